"""The Gradio demo: demo.app is the UI, demo.service the code it calls."""
