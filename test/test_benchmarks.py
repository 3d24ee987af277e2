"""Every benchmark script imports: a renamed helper in the package breaks them loudly here."""

import importlib.util
from pathlib import Path
import sys

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / 'benchmarks'


@pytest.mark.parametrize('script', sorted(p.name for p in BENCHMARKS.glob('bench_*.py')))
def test_benchmark_imports(script: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # Some benchmarks import their siblings (bench_latency_gpu uses bench_latency).
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    spec = importlib.util.spec_from_file_location(f'_bench_{script[:-3]}', BENCHMARKS / script)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    finally:
        sys.modules.pop(spec.name, None)
    assert callable(getattr(module, 'main', None)), f'{script} has no main()'
