"""The web page (Gradio): layout, actions and model texts. The only code that imports gradio; it
calls the serving layer, and audio and core for what it shows."""
