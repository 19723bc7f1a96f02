// The rules of `cgpa predict --csv`, in the browser: the same reader, the same values, the
// same per-row reasons and the same scored CSV, so a file means the same on both sides.
// Each function mirrors one in cgpa_rnn (table.py, values.py, scoring.py); the site tests
// score careless files through both and compare every row. No DOM here: the page (cgpa.js)
// feeds it a file's bytes and a predict function.
(function (exports) {
  "use strict";

  const COMMON_SCALES = [4, 5, 10, 20, 100]; // encoding.COMMON_SCALES: suggested when a grade is off the scale
  const UNFAMILIAR_SDS = 2; // predictor.UNFAMILIAR_SDS
  const BLANK_CELLS = ["", "nan", "na", "n/a"];
  const WHITESPACE = " \t\r\n"; // values.WHITESPACE: trimmed around a number
  const DECIMAL = /^[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)$/; // values.DECIMAL, ASCII digits only
  const SEMESTER_LIMIT = 20;
  const SEMESTER_PATTERNS = [/^([0-9]+)(st|nd|rd|th)$/i, /^s(?:em(?:ester)?)?[ _-]*([0-9]+)$/i];
  const COLLEGE_NAMES = ["college code", "college", "college_code"];
  const GENDER_NAMES = ["gender", "sex"];
  const ROLL_NAMES = ["roll", "roll no.", "roll no", "roll_no", "roll number", "id", "student id", "student_id",
                      "studentid", "student number", "student_number"]; // values.ROLL_NAMES: a student's ID
  const LIMITS = { columns: 1000, headerChars: 20000, fieldChars: 131072 }; // table.Limits(), csv's field limit
  const ADDED_COLUMNS = ["semester_predicted", "pred_torch", "pred_onnx", "abs_diff", "low", "high", "actual",
    "abs_error", "error"];
  const FORMULA_STARTS = ["=", "+", "-", "@", "\t", "\r"];
  // cgpa_rnn.trajectory.OUTPUTS: three paths over the semesters, then four numbers, per student; and
  // the scored CSV's columns of the last four (scoring.FINAL_COLUMNS).
  const TRAJECTORY_OUTPUTS = ["trajectory", "trajectory_low", "trajectory_high", "final", "final_low", "final_high",
    "probability_below"];
  const FINAL_COLUMNS = ["final_cgpa", "final_low", "final_high", "p_below"];
  const PYTHON_FLOAT = /^[+-]?(?:[0-9](?:_?[0-9])*(?:\.(?:[0-9](?:_?[0-9])*)?)?|\.[0-9](?:_?[0-9])*)(?:[eE][+-]?[0-9](?:_?[0-9])*)?$/;

  class DataError extends Error {}

  function stripChars(text, chars) {
    let start = 0, end = text.length;
    while (start < end && chars.includes(text[start])) start++;
    while (end > start && chars.includes(text[end - 1])) end--;
    return text.slice(start, end);
  }
  const thousands = (n) => String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ",");

  // Python's repr() of a string, as messages quote what the user sent.
  function pyRepr(text) {
    const quote = text.includes("'") && !text.includes('"') ? '"' : "'";
    let out = quote;
    for (const ch of text) {
      const code = ch.codePointAt(0);
      if (ch === "\\" || ch === quote) out += "\\" + ch;
      else if (ch === "\t") out += "\\t";
      else if (ch === "\n") out += "\\n";
      else if (ch === "\r") out += "\\r";
      else if (code === 0x20 || !/[\p{Cc}\p{Cf}\p{Cs}\p{Co}\p{Cn}\p{Zl}\p{Zp}\p{Zs}]/u.test(ch)) out += ch;
      else if (code < 0x100) out += "\\x" + code.toString(16).padStart(2, "0");
      else if (code < 0x10000) out += "\\u" + code.toString(16).padStart(4, "0");
      else out += "\\U" + code.toString(16).padStart(8, "0");
    }
    return out + quote;
  }

  function preview(value, limit = 40) {
    const chars = Array.from(String(value));
    if (chars.length <= limit) return pyRepr(chars.join(""));
    return `${pyRepr(chars.slice(0, limit).join(""))}... (${thousands(chars.length)} characters)`;
  }

  function previewColumns(columns, count = 8) {
    const shown = columns.slice(0, count).map((c) => preview(c, 24)).join(", ");
    return `[${shown}${columns.length > count ? `, ... ${columns.length} columns in all` : ""}]`;
  }

  // Python's format(x, "g") (6 significant digits), as the scored CSV and messages write numbers.
  function formatG(x, precision = 6) {
    if (Number.isNaN(x)) return "nan";
    if (!Number.isFinite(x)) return x > 0 ? "inf" : "-inf";
    if (x === 0) return Object.is(x, -0) ? "-0" : "0";
    const [mantissa, exponentText] = x.toExponential(precision - 1).split("e");
    const exponent = Number(exponentText);
    const trim = (s) => (s.includes(".") ? s.replace(/0+$/, "").replace(/\.$/, "") : s);
    if (exponent < -4 || exponent >= precision) {
      return `${trim(mantissa)}e${exponent < 0 ? "-" : "+"}${String(Math.abs(exponent)).padStart(2, "0")}`;
    }
    return trim(x.toFixed(precision - 1 - exponent));
  }

  // Python's format(x, ".Nf"): rounds the exact binary value half to even (toFixed rounds half up).
  function formatFixed(x, digits) {
    const exact = Math.abs(x).toFixed(Math.min(100, digits + 60));
    const [whole, fraction] = exact.split(".");
    const kept = whole + fraction.slice(0, digits), rest = fraction.slice(digits);
    const half = rest[0] === "5" && /^0*$/.test(rest.slice(1));
    const up = rest[0] > "5" || (rest[0] === "5" && !half) || (half && Number(kept.at(-1)) % 2 === 1);
    let value = BigInt(kept) + (up ? 1n : 0n);
    let text = value.toString().padStart(digits + 1, "0");
    text = digits ? `${text.slice(0, -digits)}.${text.slice(-digits)}` : text;
    return (x < 0 || Object.is(x, -0)) && /[1-9]/.test(text) ? "-" + text : text;
  }
  const formatPercent = (x) => `${formatFixed(x * 100, 0)}%`;

  // values.py: a number is ASCII decimal notation, nothing else.
  function decimal(value) {
    const text = stripChars(String(value), WHITESPACE);
    return DECIMAL.test(text) ? Number(text) : null;
  }

  // encoding.Scale.fitting: the common scales a grade would fit, for the message.
  function fitting(number, [low, high]) {
    const tops = COMMON_SCALES.filter((top) => number >= 0 && number <= top && top !== high).slice(0, 2);
    return tops.length ? `it fits a ${tops.map((top) => `0-${top}`).join(" or ")} scale` : "it fits none of the common scales";
  }

  // values.grade_value on the model's scale [low, high].
  function gradeValue(value, scale = [0, 10]) {
    if (value === null || value === undefined) return NaN;
    if (BLANK_CELLS.includes(stripChars(String(value), WHITESPACE).toLowerCase())) return NaN;
    const [low, high] = scale, name = `${formatG(low)}-${formatG(high)}`;
    const number = decimal(value);
    if (number === null || !Number.isFinite(number)) {
      throw new DataError(`expected a grade point on the ${name} scale (like ${formatG(high * 0.7)}) or blank, got ${preview(value)}`);
    }
    if (!(low <= number && number <= high)) {
      throw new DataError(`grade ${formatG(number)} is outside ${name}, the scale in use (${fitting(number, scale)})`);
    }
    return number;
  }

  // encoding.Groups.code: the graph's code of a group value for this model (text labels: 1 + their
  // position in groupLabels, -1 when unknown; no group column: 0).
  function groupCode(value, model) {
    if (model.groupColumn === null) return 0;
    if (!model.groupLabels) return collegeCode(value, model.groupColumn);
    const text = stripChars(String(value ?? ""), WHITESPACE);
    if (!text) throw new DataError(`expected a ${model.groupColumn} value (like ${preview(model.groupLabels[0])}), got a blank`);
    return model.groupLabels.indexOf(text) + 1 || -1;
  }

  function collegeCode(value, column = "College Code") {
    const what = column.toLowerCase().includes("code") ? column.toLowerCase() : `${column} code`;
    const number = value === null || value === undefined ? null : decimal(value);
    if (number === null) {
      throw new DataError(`expected an integer ${what} (like 115), got ${preview(value ?? "")}`);
    }
    if (!Number.isInteger(number) || !(number >= 0 && number < 2 ** 53)) {
      throw new DataError(`expected a non-negative integer ${what} below 2**53, got ${preview(value)}`);
    }
    return number === 0 ? 0 : number; // -0 is 0
  }

  function semesterNumber(column) {
    const text = stripChars(column, WHITESPACE);
    for (const pattern of SEMESTER_PATTERNS) {
      const match = pattern.exec(text);
      if (match) {
        const digits = match[1].replace(/^0+/, "") || "0";
        return digits.length <= 6 ? Number(digits) : SEMESTER_LIMIT + 1;
      }
    }
    return null;
  }

  const named = (columns, names) => columns.filter((c) => names.includes(stripChars(c, WHITESPACE).toLowerCase()));
  function one(columns, names, what, where) {
    const found = named(columns, names);
    if (found.length > 1) {
      throw new DataError(`${where}: ${found.length} ${what} columns (${found.map((c) => preview(c, 24)).join(", ")}); keep one`);
    }
    return found.length ? found[0] : null;
  }

  function readHeader(columns, where, limit = SEMESTER_LIMIT) {
    const compare = (a, b) => a[0] - b[0] || (a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0);
    const numbered = columns.filter((c) => semesterNumber(c) !== null).map((c) => [semesterNumber(c), c]).sort(compare);
    for (const [number, column] of numbered) {
      if (number < 1) {
        throw new DataError(`${where}: column ${preview(column, 24)} names semester 0; semesters are numbered from 1 (1st, sem1, ...)`);
      }
      if (number > limit) {
        throw new DataError(`${where}: column ${preview(column, 24)} names a semester past the limit of ${limit} (semesters 1-${limit} are read)`);
      }
    }
    if (!numbered.length) {
      throw new DataError(`${where}: no semester columns found in the header ${previewColumns(columns)}; expected columns named like 1st, 2nd, ... or sem1, sem2, ...`);
    }
    for (let k = 1; k < numbered.length; k++) {
      if (numbered[k - 1][0] === numbered[k][0]) {
        throw new DataError(`${where}: columns ${preview(numbered[k - 1][1], 24)} and ${preview(numbered[k][1], 24)} are both semester ${numbered[k][0]}`);
      }
    }
    const college = one(columns, COLLEGE_NAMES, "college", where);
    one(columns, GENDER_NAMES, "gender", where);
    return { semesters: numbered.map((n) => n[1]), numbers: numbered.map((n) => n[0]), college,
      rolls: named(columns, ROLL_NAMES) };
  }

  // table.detect_delimiter: the separator found most often outside quotes in the header line.
  const DELIMITERS = [",", ";", "\t"];
  function detectDelimiter(line) {
    const counts = new Map(DELIMITERS.map((d) => [d, 0]));
    let quoted = false;
    for (const ch of line) {
      if (ch === '"') quoted = !quoted;
      else if (!quoted && counts.has(ch)) counts.set(ch, counts.get(ch) + 1);
    }
    return DELIMITERS.reduce((best, d) => (counts.get(d) > counts.get(best) ? d : best), ",");
  }
  const DECIMAL_COMMA = /^[+-]?[0-9]+,[0-9]+$/; // table._DECIMAL_COMMA: 12,5 in a semicolon file is 12.5

  // Python's csv.reader(strict=True, skipinitialspace=True) over io.StringIO(text): lines end at
  // "\n" only, and every record reports the line it started on.
  function* csvRecords(text, delimiter = ",") {
    let position = 0, lineNumber = 0, state = "start_record", field = "", fieldLength = 0, cells = [], start = 1;
    const fail = (message) => { const e = new Error(message); e.line = lineNumber; throw e; };
    const add = (ch) => {
      if (fieldLength >= LIMITS.fieldChars) fail(`field larger than field limit (${LIMITS.fieldChars})`);
      field += ch; fieldLength++;
    };
    const save = () => { cells.push(field); field = ""; fieldLength = 0; };
    while (position < text.length) {
      const end = text.indexOf("\n", position);
      const line = end < 0 ? text.slice(position) : text.slice(position, end + 1);
      position += line.length;
      lineNumber++;
      if (state === "start_record") start = lineNumber;
      for (const ch of line) {
        switch (state) {
          case "start_record":
            if (ch === "\n" || ch === "\r") { state = "eat_crnl"; break; }
            state = "start_field"; // falls through to read the first character of a field
          case "start_field":
            if (ch === "\n" || ch === "\r") { save(); state = "eat_crnl"; }
            else if (ch === '"') state = "in_quoted";
            else if (ch === " ") { /* skipinitialspace */ }
            else if (ch === delimiter) save();
            else { add(ch); state = "in_field"; }
            break;
          case "in_field":
            if (ch === "\n" || ch === "\r") { save(); state = "eat_crnl"; }
            else if (ch === delimiter) { save(); state = "start_field"; }
            else add(ch);
            break;
          case "in_quoted":
            if (ch === '"') state = "quote_in_quoted"; else add(ch);
            break;
          case "quote_in_quoted":
            if (ch === '"') { add(ch); state = "in_quoted"; }
            else if (ch === delimiter) { save(); state = "start_field"; }
            else if (ch === "\n" || ch === "\r") { save(); state = "eat_crnl"; }
            else fail(`'${delimiter}' expected after '"'`);
            break;
          case "eat_crnl":
            if (ch !== "\n" && ch !== "\r") fail("new-line character seen in unquoted field - do you need to open the file in universal-newline mode?");
            break;
        }
      }
      // End of the line: a record ends unless a quoted field goes on.
      if (state === "in_field" || state === "start_field" || state === "quote_in_quoted") { save(); state = "start_record"; }
      else if (state === "eat_crnl") state = "start_record";
      if (state === "start_record") { yield { cells, start, end: lineNumber }; cells = []; }
    }
    if (state === "in_quoted" || fieldLength) fail("unexpected end of data");
  }

  // table.read_table + parse_table: bytes -> {columns, rows, lines}, or one DataError.
  function readTable(bytes, where) {
    if (!bytes.some((b) => !(b === 0x20 || (b >= 0x09 && b <= 0x0d)))) {
      throw new DataError(`${where}: the file is empty (expected a header row and one row per student)`);
    }
    let text;
    try {
      text = new TextDecoder("utf-8", { fatal: true }).decode(bytes); // drops one leading BOM, as utf-8-sig
    } catch {
      throw new DataError(`${where}: not a CSV text file (it is not UTF-8 text)`);
    }
    if (text.includes("\0")) throw new DataError(`${where}: not a CSV text file (it contains NUL bytes)`);
    const head = Array.from(text.slice(0, 2 * LIMITS.headerChars + 2)).slice(0, LIMITS.headerChars + 1);
    if (!head.includes("\n") && Array.from(text.slice(0, 2 * LIMITS.headerChars + 4)).length > LIMITS.headerChars) {
      throw new DataError(`${where}: the header line is longer than ${thousands(LIMITS.headerChars)} characters (it starts ${preview(text)})`);
    }
    const newline = text.indexOf("\n");
    const delimiter = detectDelimiter(newline < 0 ? text : text.slice(0, newline));
    const records = csvRecords(text, delimiter);
    let lastLine = 0;
    try {
      const first = records.next();
      const header = first.done ? null : first.value.cells;
      if (!header || !header.length) {
        throw new DataError(`${where}: the file is empty (expected a header row and one row per student)`);
      }
      if (header.length > LIMITS.columns) {
        throw new DataError(`${where}: ${thousands(header.length)} columns is over the ${LIMITS.columns}-column limit`);
      }
      const strip = (c) => stripChars(c, WHITESPACE);
      const columns = header.map(strip), rows = [], lines = [];
      for (const { cells, start, end } of records) {
        lastLine = end;
        if (!cells.some((c) => strip(c))) continue;
        if (cells.length > columns.length) {
          throw new DataError(`${where}, line ${start}: ${cells.length} cells but the header has ${columns.length} columns`);
        }
        const stripped = cells.map(strip).map((c) => (delimiter === ";" && DECIMAL_COMMA.test(c) ? c.replace(",", ".") : c));
        rows.push(stripped.concat(Array(columns.length - cells.length).fill("")));
        lines.push(start);
      }
      return { columns, rows, lines, where };
    } catch (error) {
      if (error instanceof DataError) throw error;
      throw new DataError(`${where}, line ${error.line ?? lastLine}: not a readable CSV (${error.message})`);
    }
  }

  // Predictor.question: what one row asks, or the reason it cannot be scored.
  // `model`: the page's config (semesters, semesterNames, scale), as Predictor knows its model.
  function semesterName(model, t) {
    const name = model.semesterNames[t];
    return /^[0-9]+(st|nd|rd|th)$/.test(name) ? `${name} semester` : name;
  }
  const semesterLabel = (model, t) => `${semesterName(model, t)} (${model.scale.map((v) => formatG(v)).join("-")})`;

  function question(values, college, model, hideLast) {
    const semesters = model.semesters;
    const row = new Float32Array(semesters).fill(NaN);
    values.forEach((value, t) => {
      try {
        row[t] = gradeValue(value, model.scale);
      } catch (error) {
        throw new DataError(`${semesterLabel(model, t)}: ${error.message}`);
      }
    });
    if (row.every(Number.isNaN)) throw new DataError("grades: no grade given; enter at least one semester");
    let code;
    try {
      code = groupCode(college, model);
    } catch (error) {
      const column = model.groupColumn ?? "college";
      throw new DataError(`${COLLEGE_NAMES.includes(column.toLowerCase()) ? "college" : column}: ${error.message}`);
    }
    const observed = [...row.keys()].filter((t) => !Number.isNaN(row[t]));
    const last = observed[observed.length - 1];
    if (last < semesters - 1 && !hideLast) return { row, college: code, semester: last + 2, actual: NaN };
    if (observed.length === 1) {
      throw new DataError(`grades: only ${semesterName(model, last)} is given; a hindcast needs earlier semesters to predict it from`);
    }
    const actual = row[last];
    row[last] = NaN;
    return { row, college: code, semester: last + 1, actual };
  }

  // The row a question was asked of, with the semester a hindcast hid put back: the rest of a
  // degree starts from every grade given (scoring.rest_of_degree, Predictor.trajectory).
  function givenRow(q) {
    const row = Float32Array.from(q.row);
    if (!Number.isNaN(q.actual)) row[q.semester - 1] = q.actual;
    return row;
  }

  // Predictor.risk_line: the at-risk line from a field, a grade point on the model's scale (blank: the
  // model's own line, `model.atRiskLine`).
  function riskLine(value, model) {
    if (value === null || value === undefined || !String(value).trim()) return model.atRiskLine;
    let line;
    try {
      line = gradeValue(value, model.scale);
    } catch {
      line = NaN;
    }
    const [low, high] = model.scale;
    if (!(low <= line && line <= high)) {
      throw new DataError(`at risk below: expected a grade point between ${formatG(low)} and ${formatG(high)}, ` +
        `got ${preview(value)}`);
    }
    return line;
  }

  // values.clean_roll: a student ID as people write it ("17020.0" from a spreadsheet is 17020), by
  // Python's float() and int().
  function cleanRoll(value) {
    if (!PYTHON_FLOAT.test(value)) return value;
    const number = Number(value.replace(/_/g, ""));
    return Number.isInteger(number) ? BigInt(number).toString() : value;
  }

  // Header.student: how a row's student is named to people, "group/ID" (IDs repeat across groups),
  // the ID alone without a group, else its line. `cell(column)` reads the row (a repeated column: the last).
  function studentName(header, cell, line) {
    const rolls = header.rolls.filter((c) => cell(c)).map((c) => cleanRoll(cell(c)));
    if (!rolls.length) return `line ${line}`;
    const group = header.college && cell(header.college) ? cleanRoll(cell(header.college)) : "";
    return group ? `${group}/${rolls[0]}` : rolls[0];
  }

  // scoring.score_table: every row scored or given its reason; `predict(grades, colleges)` runs the model.
  // scoring.scoring_header: the model's own semester names when it was trained on named columns
  // (G1, G2, G3) and the file has them, else semester numbers; the model's group column.
  function scoringHeader(columns, where, model) {
    const names = model.semesterNames;
    const present = new Set(columns.map((c) => stripChars(c, WHITESPACE)));
    const given = names.filter((n) => present.has(n));
    const header = names.every((n, k) => semesterNumber(n) === k + 1) || !given.length
      ? readHeader(columns, where)
      : { semesters: given, numbers: given.map((n) => names.indexOf(n) + 1), rolls: named(columns, ROLL_NAMES) };
    const unknown = header.semesters.filter((c, k) => header.numbers[k] > model.semesters);
    if (unknown.length) {
      throw new DataError(`${where}: column(s) ${previewColumns(unknown)} name semesters the model does not know (it knows semesters 1-${model.semesters})`);
    }
    const column = model.groupColumn;
    header.college = column === null ? null : COLLEGE_NAMES.includes(column.toLowerCase())
      ? one(columns, COLLEGE_NAMES, "college", where)
      : named(columns, [stripChars(column, WHITESPACE).toLowerCase()])[0] ?? null;
    if (column !== null && header.college === null) {
      throw new DataError(`${where}: no '${column}' column in the header ${previewColumns(columns)}`);
    }
    return header;
  }

  // Predictor.unfamiliar: a warning when the grades scored are unlike the model's training students.
  function unfamiliar(scored, model) {
    if (!model.trainingGrades) return null;
    let sum = 0, count = 0;
    scored.questions.forEach((q) => q && q.row.forEach((g) => { if (!Number.isNaN(g)) { sum += g; count++; } }));
    if (!count) return null;
    const average = sum / count, { mean, std } = model.trainingGrades, distance = (average - mean) / std;
    if (Math.abs(distance) <= UNFAMILIAR_SDS) return null;
    const scale = model.scale.map((v) => formatG(v)).join("-");
    return `Warning: these grades average ${formatFixed(average, 2)}, ${formatFixed(Math.abs(distance), 1)} standard ` +
      `deviations ${distance < 0 ? "below" : "above"} the students this model was trained on (${formatFixed(mean, 2)} ± ` +
      `${formatFixed(std, 2)} on its ${scale} scale). Its forecasts here are extrapolation, not evidence: check the ` +
      "scale, or train a model on your own cohort.";
  }

  // `rest`, when given, adds the rest of each degree as scoring.score_table(trajectory=True) does:
  // {detail(grades, colleges) -> the trajectory outputs by name (explain.onnx's, run with the line), below}.
  async function scoreTable(table, model, predict, hideLast = false, rest = null) {
    const semesters = model.semesters;
    const header = scoringHeader(table.columns, table.where, model);
    if (!table.rows.length) throw new DataError(`${table.where}: the file has a header but no student rows`);
    const count = table.rows.length;
    const scored = { table, semesters, questions: Array(count).fill(null), errors: Array(count).fill(""),
      prediction: new Float64Array(count).fill(NaN), low: new Float64Array(count).fill(NaN),
      high: new Float64Array(count).fill(NaN) };
    const index = new Map(table.columns.map((c, k) => [c, k])); // a repeated name: the last one, as a dict
    scored.students = table.rows.map((cells, i) => studentName(header, (c) => cells[index.get(c)], table.lines[i]));
    table.rows.forEach((cells, i) => {
      const values = Array(semesters).fill("");
      header.semesters.forEach((column, k) => { values[header.numbers[k] - 1] = cells[index.get(column)]; });
      try {
        scored.questions[i] = question(values, header.college === null ? "" : cells[index.get(header.college)], model,
          hideLast);
      } catch (error) {
        scored.errors[i] = `line ${table.lines[i]}: ${error.message}`;
      }
    });
    const ok = [...scored.questions.keys()].filter((i) => scored.questions[i]);
    if (rest) {
      scored.below = rest.below;
      const nothing = Array(semesters).fill(NaN); // a row with an error
      scored.ahead = Object.fromEntries(TRAJECTORY_OUTPUTS.map((name, k) => [name, k < 3 ? Array(count).fill(nothing)
        : new Float64Array(count).fill(NaN)]));
    }
    for (let from = 0; from < ok.length; from += 4096) {
      const chunk = ok.slice(from, from + 4096);
      const colleges = chunk.map((i) => scored.questions[i].college);
      const out = await predict(chunk.map((i) => Array.from(scored.questions[i].row)), colleges);
      chunk.forEach((i, k) => {
        scored.prediction[i] = out.prediction[k]; scored.low[i] = out.low[k]; scored.high[i] = out.high[k];
      });
      if (!rest) continue;
      const ahead = await rest.detail(chunk.map((i) => Array.from(givenRow(scored.questions[i]))), colleges);
      Object.entries(scored.ahead).forEach(([name, values]) => chunk.forEach((i, k) => { values[i] = ahead[name][k]; }));
    }
    scored.warning = unfamiliar(scored, model);
    return scored;
  }

  // scoring.HindcastSummary: how close the model came where the answer is known.
  function hindcastSummary(scored, inSample, intervalLevel) {
    const rows = [...scored.questions.keys()].filter((i) => scored.questions[i] && !Number.isNaN(scored.questions[i].actual));
    if (!rows.length) return null;
    let error = 0, persistence = 0, covered = 0;
    const points = rows.map((i) => {
      const { row, actual } = scored.questions[i];
      const previous = row.filter((g) => !Number.isNaN(g)).at(-1);
      error += Math.abs(scored.prediction[i] - actual);
      persistence += Math.abs(previous - actual);
      covered += scored.low[i] <= actual && actual <= scored.high[i] ? 1 : 0;
      return { actual, prediction: scored.prediction[i], low: scored.low[i], high: scored.high[i] };
    });
    const summary = { students: rows.length, mae: error / rows.length, persistenceMae: persistence / rows.length,
      coverage: covered / rows.length, inSample, points };
    const caveat = inSample ? " These students are the model's own training data, so this is in-sample: expect " +
      "larger errors on a new cohort (the model card gives the cross-validated error)." : "";
    summary.text = `Hindcast of ${summary.students} student${summary.students === 1 ? "" : "s"} (a known semester predicted from the earlier ones): ` +
      `mean absolute error ${formatFixed(summary.mae, 2)} grade points (repeating the previous semester: ` +
      `${formatFixed(summary.persistenceMae, 2)}); the ${intervalLevel} interval held ${formatPercent(summary.coverage)} ` +
      `of the actual grades.${caveat}`;
    return summary;
  }

  // scoring.trajectory_columns: each semester that can be forecast (2..S), then the final CGPA and the chance.
  const trajectoryColumns = (semesters) => [...Array(semesters - 1).keys()].flatMap((t) =>
    ["pred", "low", "high"].map((part) => `sem${t + 2}_${part}`)).concat(FINAL_COLUMNS);

  // scoring.write_scored_csv: the input cells, then the added columns (and the rest of each degree, when
  // scored), as Python's csv.writer writes them.
  function scoredCsv(scored) {
    const safe = (v) => (typeof v === "string" && FORMULA_STARTS.some((s) => v.startsWith(s)) ? "'" + v : v);
    const cell = (v) => {
      const text = typeof v === "number" ? (Number.isNaN(v) ? "" : formatG(v)) : safe(v ?? "");
      return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
    };
    const ahead = scored.ahead;
    const columns = scored.table.columns.concat(ADDED_COLUMNS, ahead ? trajectoryColumns(scored.semesters) : []);
    const lines = [columns.map((c) => cell(safe(c))).join(",")];
    scored.table.rows.forEach((cells, i) => {
      const q = scored.questions[i];
      const numbers = q ? [NaN, scored.prediction[i], NaN, scored.low[i], scored.high[i], q.actual,
        Math.abs(q.actual - scored.prediction[i])] : Array(7).fill(NaN);
      const rest = !ahead ? [] : [...Array(scored.semesters - 1).keys()].flatMap((t) =>
        TRAJECTORY_OUTPUTS.slice(0, 3).map((name) => ahead[name][i][t + 1])).concat(
        TRAJECTORY_OUTPUTS.slice(3).map((name) => ahead[name][i]));
      lines.push(cells.concat([q ? String(q.semester) : "", ...numbers, scored.errors[i], ...rest]).map(cell).join(","));
    });
    return lines.join("\r\n") + "\r\n";
  }

  Object.assign(exports, { DataError, readTable, readHeader, scoreTable, hindcastSummary, scoredCsv, gradeValue,
    collegeCode, groupCode, question, givenRow, riskLine, semesterName, formatFixed, formatG, preview, BLANK_CELLS,
    TRAJECTORY_OUTPUTS });
})(typeof window === "undefined" ? globalThis.cgpaRules = {} : (window.cgpaRules = {}));
