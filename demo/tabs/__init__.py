"""The demo's tabs, one module each: `build(...)` lays the tab out and wires its events; the
handlers are top-level functions that tests call directly."""
