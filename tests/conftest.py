"""Shared fixtures (one pipeline for the whole session: the default PP-OCRv4 mobile models) and the
test layers.

Every test gets the marker of its file's layer (LAYERS; docs/dev/testing.md):
  unit         pure functions, no model files, no network: `pytest -m unit`
  golden       the default models on real images: exact boxes and texts, CLI, inputs, config
  integration  the service, the browser, the model zoo, training, install checks, fuzzing (also `slow`)
`pytest -m "not slow"` runs the first two in under a minute; `pytest -q` runs everything.
A file missing from LAYERS counts as integration, so a new slow file never slows the fast layer.
"""

import contextlib
import functools
import http.server
import threading
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"
DEMO = DATA / "general_ocr_002.png"  # the seed's boarding pass (a JPEG despite its name)


LAYERS = {
    "unit": ("test_crop", "test_det", "test_rec", "test_draw", "test_runtime", "test_train_cli", "test_docs",
             "test_calibrate"),
    "golden": ("test_golden", "test_config", "test_timing", "test_models", "test_inputs", "test_bad_input",
               "test_result", "test_eval", "test_cli", "test_hpip", "test_export"),
    "integration": ("test_serving", "test_serving_browser", "test_serving_schema", "test_serving_security",
                    "test_serving_config",
                    "test_model_zoo", "test_train", "test_ocrmypdf", "test_fuzz", "test_hostile", "test_memory",
                    "test_install", "test_doc_blocks"),
}
_LAYER_OF = {name: layer for layer, names in LAYERS.items() for name in names}
# The slowest tests of the golden files (several seconds each: threads, subprocesses, other models,
# gigapixel arrays) run with the integration layer, which keeps `-m "not slow"` under a minute.
SLOW_TESTS = {
    "test_config": ("test_predict_is_thread_safe_with_overrides",
                    "test_predict_override_changes_result_but_not_config"),
    "test_cli": ("test_pipeline_yaml_and_flag_override", "test_limit_flags_and_url_allow",
                 "test_pdf_input_saves_one_file_per_page", "test_unwritable_save_path_is_a_clear_error",
                 "test_folder_with_one_bad_file", "test_quiet_prints_nothing", "test_yaml_global_input_is_used",
                 "test_missing_input_file", "test_gpu_on_cpu_machine_is_an_error",
                 "test_other_devices_are_not_supported"),
    "test_hpip": ("test_exact_path_recognises_page_by_page",
                  "test_fast_path_pools_recognition_across_the_pages_of_one_call",
                  "test_use_hpip_changes_the_environment_only_with_process_tuning",
                  "test_pool_is_flushed_at_its_limits_and_before_a_bad_input",
                  *(f"test_fast_path_reads_what_the_exact_path_reads[{name}]"  # the demo stays in the fast layer
                    for name in ("11.jpg", "korean_1.jpg", "00009282.jpg", "00207393.jpg"))),
    "test_export": ("test_service_returns_the_searchable_pdf", "test_cli_output_formats",
                    "test_searchable_pdf_of_a_pdf_keeps_its_pages",
                    "test_cli_never_writes_over_an_input_or_twice_to_one_name",
                    "test_cli_writes_a_long_pdf_page_by_page"),
    "test_bad_input": ("test_huge_bgr_array_memory_is_bounded", "test_huge_gray_array_memory_is_bounded",
                       "test_file_above_pixel_limit_via_pipeline", "test_truncated_jpeg_decodes_partially"),
    "test_models": ("test_ppocrv5_models_by_name_read_the_demo",
                    "test_pipeline_with_local_model_dir_matches_named_model"),
    "test_eval": ("test_eval_command_writes_table_and_json",),
    "test_inputs": ("test_pdf_render_scale_setting", "test_two_page_pdf", "test_list_of_path_and_array_keeps_order"),
}


def _marker_sets(stem: str) -> list[set[str]]:
    """The marker sets the tests of a file can have (integration tests are always slow)."""
    layer = _LAYER_OF.get(stem, "integration")
    return [{"integration", "slow"}] if layer == "integration" else [{layer}, {layer, "slow"}]


def pytest_ignore_collect(collection_path, config):
    # A file none of whose tests a -m expression selects is not even imported: the integration files
    # import FastAPI, Hypothesis, PyTorch..., seconds of the fast layer's minute.
    expr = config.getoption("markexpr")
    if not expr or collection_path.suffix != ".py" or not collection_path.name.startswith("test_"):
        return None
    try:
        from _pytest.mark.expression import Expression
    except ImportError:  # pytest moved it: collect everything, deselect as usual
        return None
    compiled = Expression.compile(expr)
    if not any(compiled.evaluate(lambda name, m=m: name in m) for m in _marker_sets(collection_path.stem)):
        return True
    return None


def pytest_collection_modifyitems(config, items):
    for item in items:
        layer = _LAYER_OF.get(item.path.stem, "integration")
        item.add_marker(layer)
        slow = SLOW_TESTS.get(item.path.stem, ())
        if layer == "integration" or item.originalname in slow or item.name in slow:
            item.add_marker("slow")


@pytest.fixture(scope="session")
def pipeline():
    from ocrflow import create_pipeline

    return create_pipeline("OCR", device="cpu")


@contextlib.contextmanager
def serve_folder(root):
    """A quiet local HTTP server on 127.0.0.1 (free port) serving a folder; yields its base URL."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def no_proxy(monkeypatch):
    """Loopback URLs must not go through a proxy set in the environment."""
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def pipeline_v6():
    """The OCRv6 pipeline: PP-OCRv6 small with page and text line orientation."""
    from ocrflow import create_pipeline

    return create_pipeline("OCRv6", device="cpu")
