"""Hugging Face Space entry point: serves the shipped model from a plain checkout."""
from demo.app import CONCURRENCY, MAX_FILE_SIZE, build_demo

demo = build_demo()

if __name__ == "__main__":
    demo.queue(default_concurrency_limit=CONCURRENCY, max_size=None)
    demo.launch(max_file_size=MAX_FILE_SIZE)
