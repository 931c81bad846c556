"""The model in a browser: a Gradio app (`ui`) and the Space-ready folder that runs it (`space`).

Imported only by ``hub-emo app`` and ``hub-emo space``: Gradio and its web stack load for
the app alone, never with ``import hub_emo``. `source` (which model, report and examples
an app shows) and `space` import no Gradio either.
"""
