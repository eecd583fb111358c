"""The compiled llama.cpp runs on every x86-64 CPU of this project's machines (AVX2-only AMD EPYC and
AVX-512/AMX Intel Xeon): it is built for a fixed AVX2 baseline, never with -march=native (README:
"Unusual CPUs"). A native build made on an AMX machine dies with SIGILL on the batched path."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import SMOLLM, has_module, require

# Registers and instructions that only AVX-512 and AMX CPUs have.
BEYOND_BASELINE = re.compile(r"%zmm\d|%k[1-7]\b|%tmm\d|\b(?:ldtilecfg|sttilecfg|tilezero|tileloadd|tdpb\w+)\b")


@pytest.fixture(scope="module")
def llama_libs() -> list[Path]:
    require(has_module("llama_cpp"), "llama-cpp-python", "run `make install` (it builds the portable wheel)")
    import llama_cpp

    libs = sorted(p for p in (Path(llama_cpp.__file__).parent / "lib").glob("*.so") if p.is_file())
    assert libs, "llama_cpp ships no shared libraries"
    return libs


def test_the_build_reports_no_cpu_feature_beyond_the_baseline(llama_libs: list[Path]) -> None:
    import llama_cpp

    info = llama_cpp.llama_print_system_info().decode()
    assert "AVX2 = 1" in info, info
    enabled = {k.strip() for k, v in re.findall(r"([\w ]+?) = (\d)", info) if v == "1"}
    assert not {f for f in enabled if f.startswith(("AVX512", "AMX", "AVX_VNNI"))}, info


def test_no_avx512_or_amx_instruction_in_the_libraries(llama_libs: list[Path]) -> None:
    objdump = shutil.which("objdump")
    require(objdump is not None, "objdump", "apt-get install binutils")
    for lib in llama_libs:
        listing = subprocess.run(
            [objdump, "-d", "--no-show-raw-insn", str(lib)], capture_output=True, text=True, check=True
        ).stdout
        found = BEYOND_BASELINE.search(listing)
        assert found is None, f"{lib.name} uses {found.group(0)}: it was compiled for a newer CPU than the baseline"


def test_a_long_prompt_takes_the_batched_path_without_crashing(llama_libs: list[Path]) -> None:
    """The reported crash: 5 tokens completed, ~300 (the batched matrix path) died with SIGILL."""
    require(SMOLLM.exists(), "the SmolLM2-135M GGUF model", "run `make models`")
    script = (
        "import sys, llama_cpp\n"
        "m = llama_cpp.Llama(model_path=sys.argv[1], n_ctx=1024, n_batch=512, verbose=False)\n"
        "prompt = ' '.join(['The council met to discuss the new budget for local clinics.'] * 30)\n"
        "n = len(m.tokenize(prompt.encode()))\n"
        "out = m(prompt, max_tokens=4)\n"
        "print(n, repr(out['choices'][0]['text']))\n"
    )
    done = subprocess.run([sys.executable, "-c", script, str(SMOLLM)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"exit {done.returncode} (-4 is SIGILL): {done.stderr[-2000:]}"
    assert int(done.stdout.split()[0]) >= 300
