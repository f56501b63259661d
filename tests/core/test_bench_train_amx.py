"""``tests/perf/bench_train.py`` reports ``amx_used`` from oneDNN's verbose log: only a primitive that ran on
AMX counts, not the header naming the CPU's ISA (which lists AMX on every AMX CPU, whatever runs)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "perf" / "bench_train.py"


def _bench():
    spec = importlib.util.spec_from_file_location("bench_train", BENCH)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


HEADER = (
    "onednn_verbose,v1,info,oneDNN v3.7.1 (commit 8d263e693366ef8db40acc569cc7d8edf644556d)\n"
    "onednn_verbose,v1,info,cpu,runtime:threadpool,nthr:2\n"
    "onednn_verbose,v1,info,cpu,isa:Intel AVX-512 with float16, Intel DL Boost and bfloat16 support and "
    "Intel AMX with bfloat16 and 8-bit integer support\n"
    "onednn_verbose,v1,primitive,info,template:operation,engine,primitive,implementation,prop_kind\n"
)
AVX512 = (
    "onednn_verbose,v1,primitive,exec,cpu,convolution,brgconv_1x1:avx512_core,forward_training,"
    "src:f32::blocked:acdb::f0 wei:f32::blocked:abcd::f0,,alg:convolution_direct,mb8_ic32oc16_ih128oh128kh1,0.21\n"
    "onednn_verbose,v1,primitive,exec,cpu,reorder,jit:uni,undef,src:f32::blocked:abcd::f0,,,8x32x3x3,0.01\n"
)
AMX = (
    "onednn_verbose,v1,primitive,exec,cpu,convolution,brgconv_1x1:avx512_core_amx,forward_training,"
    "src:bf16::blocked:acdb::f0 wei:bf16::blocked:AB16b32a2b::f0,,alg:convolution_direct,mb8_ic32oc16,0.05\n"
)
OLD_FORMAT_AMX = (
    "dnnl_verbose,exec,cpu,convolution,brg:avx512_core_amx,forward_training,src_bf16::blocked,,0.1\n"
)


def test_amx_counts_only_primitives_that_ran_on_it():
    bench = _bench()
    assert not bench.amx_in_verbose(HEADER)  # the ISA header alone: nothing ran on AMX
    assert not bench.amx_in_verbose(HEADER + AVX512)
    assert bench.amx_in_verbose(HEADER + AVX512 + AMX)
    assert bench.amx_in_verbose(OLD_FORMAT_AMX)  # oneDNN 2.x lines (no version field)
    assert not bench.amx_in_verbose("")
