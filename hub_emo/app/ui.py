"""The Gradio app: a hub_emo model to try in a browser, with the study beside it.

Everything goes through `hub_emo.inference`'s pipeline, so a clip scores here exactly as
with ``hub-emo predict`` (any format, rate, channel count and length; long recordings in
chunks, shown as a timeline), and bad audio shows the pipeline's own message.

Offline by construction: Gradio's analytics and version check are off, the theme uses
the fonts Gradio ships, plots are PNGs drawn by `hub_emo.plots` and the report is one self-contained
page; the page requests nothing beyond the app's own server (a browser test checks it).
"""

from __future__ import annotations

import html
import logging
import os
from pathlib import Path

os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import gradio as gr  # noqa: E402 - after the environment that turns its analytics off

from hub_emo.app.source import AppSource  # noqa: E402
from hub_emo.audio import AudioError  # noqa: E402
from hub_emo.inference import DEFAULT_CHUNK_SECONDS, pipeline  # noqa: E402
from hub_emo import plots  # noqa: E402

logger = logging.getLogger(__name__)

CSS = """
#status { min-height: 2.5em; }
#status.error, #status .error { color: #b42318; }
"""


def describe(config, model_name: str) -> str:
    """A line on what the model is, from its config (the single source of truth)."""
    backbone = getattr(config, "backbone_config", None)
    parts = [f"`{model_name}`"]
    if backbone is not None:
        parts.append(f"{backbone.model_type} backbone, {backbone.num_hidden_layers} layers")
    for name in ("aggregation", "pooling", "adapter"):
        value = getattr(config, name, None)
        if value not in (None, "none"):
            parts.append(f"{name} {value}")
    labels = ", ".join(config.id2label[i] for i in sorted(config.id2label))
    return " · ".join(parts) + f"  \nEmotions: {labels}"


def report_frame(path) -> str:
    """A report (HTML, or Markdown made into HTML) in an isolated frame: its style stays its own."""
    path = Path(path)
    if path.suffix.lower() in (".html", ".htm"):
        document = path.read_text(encoding="utf-8")
    else:
        from hub_emo.analysis.html import markdown_body, page

        document = page(markdown_body(path.read_text(encoding="utf-8"), path.parent), path.stem)
    return (
        f'<iframe id="report-frame" title="study report" srcdoc="{html.escape(document, quote=True)}" '
        'style="width:100%;height:80vh;border:1px solid #d0d7de;border-radius:8px"></iframe>'
    )


def error_text(error: Exception) -> str:
    """The pipeline's message, naming the uploaded file by its own name, not Gradio's temp path."""
    if isinstance(error, AudioError):
        name = os.path.basename(error.source)
        return f"{name}: {error.problem.replace(error.source, name)}"
    return str(error)


def _classify_for(classifier):
    """The page's callback: a clip and chunk length in; status HTML, scores and timeline out."""
    def classify(audio_path, chunk_seconds):
        hidden = gr.update(visible=False, value=None)
        if not audio_path:
            return "Upload or record a clip to see its emotions.", None, hidden
        try:
            result = classifier.timeline(audio_path, chunk_seconds=float(chunk_seconds or DEFAULT_CHUNK_SECONDS))
        except (AudioError, ValueError) as error:
            return f'<p class="error" id="error-text">⚠ {html.escape(error_text(error))}</p>', None, hidden
        except Exception as error:  # noqa: BLE001 - the page shows a message; the log keeps the trace
            logger.exception("classifying %s failed", audio_path)
            return f'<p class="error" id="error-text">⚠ unexpected {type(error).__name__}: {html.escape(str(error))}</p>', None, hidden
        top = result["scores"][0]
        chunks = result["chunks"]
        status = f'<p id="top-emotion">Top emotion: <strong>{html.escape(top["label"])}</strong> ({top["score"]:.2f})'
        if len(chunks) > 1:
            status += f" · {len(chunks)} chunks of {float(chunk_seconds):g} s, scores averaged by length"
        status += "</p>"
        scores = {s["label"]: s["score"] for s in result["scores"]}
        timeline = gr.update(visible=True, value=plots.timeline(chunks)) if len(chunks) > 1 else hidden
        return status, scores, timeline

    return classify


def _input_column(source: AppSource):
    """The column with the audio input, the chunk-length slider and the example clips."""
    with gr.Column():
        audio = gr.Audio(
            sources=["upload", "microphone"],
            type="filepath",
            format=None,
            label="Audio: any format, sample rate, channels or length",
            elem_id="audio-input",
        )
        chunk = gr.Slider(
            2, 30, value=DEFAULT_CHUNK_SECONDS, step=1,
            label="Chunk length for long recordings (s)", elem_id="chunk-seconds",
        )
        if source.examples:
            labels = source.example_labels if len(source.example_labels) == len(source.examples) else None
            gr.Examples(
                [[str(p)] for p in source.examples], inputs=[audio], label="Example clips",
                example_labels=labels,
            )
    return audio, chunk


def build_app(source: AppSource, *, revision: str | None = None, trust_remote_code: bool = False) -> gr.Blocks:
    """The app's page for ``source`` (loads the model once, here)."""
    classifier = pipeline(source.model, revision=revision, trust_remote_code=trust_remote_code)
    config = classifier.model.config
    shares = getattr(classifier.model, "layer_weight_shares", None)  # hub_emo models only
    weights = shares() if shares else None
    classify = _classify_for(classifier)

    with gr.Blocks(title=f"hub_emo · {source.title or source.model}", analytics_enabled=False) as app:
        gr.Markdown(f"## {html.escape(source.title or source.model)}\n{describe(config, source.model)}")
        with gr.Tabs():
            with gr.Tab("Try the model"):
                with gr.Row():
                    audio, chunk = _input_column(source)
                    with gr.Column():
                        status = gr.HTML("Upload or record a clip to see its emotions.", elem_id="status")
                        scores = gr.Label(label="Emotion scores", num_top_classes=len(config.id2label), elem_id="scores")
                        timeline = gr.Plot(label="Scores over time (per chunk)", visible=False, elem_id="timeline")
                if weights is not None:
                    gr.Plot(
                        plots.layer_weights(weights),
                        label="Learned layer weights (weighted sum over hidden states)",
                        elem_id="layer-weights",
                    )
            if source.report is not None:
                with gr.Tab("Study report"):
                    gr.HTML(report_frame(source.report), elem_id="report")
        gr.on([audio.change, chunk.release], classify, inputs=[audio, chunk], outputs=[status, scores, timeline])
    return app


def launch(
    source: AppSource,
    *,
    port: int | None = None,
    host: str = "127.0.0.1",
    block: bool = True,
    revision: str | None = None,
    trust_remote_code: bool = False,
) -> gr.Blocks:
    """Serve the app on ``host:port`` (blocking unless ``block=False``; then ``.close()`` it)."""
    app = build_app(source, revision=revision, trust_remote_code=trust_remote_code)
    allowed = sorted({str(p.parent) for p in source.examples})
    app.launch(
        server_name=host,
        server_port=port,
        prevent_thread_lock=not block,
        show_error=False,
        inbrowser=False,
        share=False,
        ssr_mode=False,
        pwa=False,
        mcp_server=False,
        enable_monitoring=False,
        allowed_paths=allowed,
        css=CSS,
        quiet=not block,
    )
    return app
