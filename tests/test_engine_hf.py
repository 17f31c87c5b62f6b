"""The transformers engine against the generation contract (sodctl/rollout/engine.py)."""

from __future__ import annotations

import pytest
import torch
from rollout_fixtures import PROMPTS, TOK

from sodctl.models.tiny import TINY_SPECS, build_model, create_tiny_checkpoint
from sodctl.rollout.engine import GenerationEngine, SamplingParams
from sodctl.rollout.hf_engine import HFEngine, nucleus, sample_tokens, sequence_log_probs
from sodctl.rollout.qwen3_decode import Qwen3Decoder

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def engine():
    return HFEngine(build_model(TOK, seed=0), TOK, max_batch_size=3)


def test_protocol_and_shapes(engine):
    assert isinstance(engine, GenerationEngine)
    outs = engine.generate(PROMPTS, SamplingParams(max_new_tokens=17, seed=0))
    assert len(outs) == len(PROMPTS)
    for o in outs:
        assert len(o.token_ids) == len(o.log_probs) <= 17
        assert o.text == TOK.decode(o.token_ids, skip_special_tokens=False)
        assert (o.finish_reason == "length") == (
            len(o.token_ids) == 17 and o.token_ids[-1] not in engine.eos_token_ids
        )
        if o.finish_reason == "eos":
            assert o.token_ids[-1] in engine.eos_token_ids
    assert all(
        o.token_ids == [] for o in engine.generate(PROMPTS, SamplingParams(max_new_tokens=0))
    )


def test_greedy_matches_argmax_of_a_forward_pass_and_padding_is_invisible(engine):
    batch = engine.generate(PROMPTS, SamplingParams(max_new_tokens=12, temperature=0))
    for p, o in zip(PROMPTS, batch):
        alone = engine.generate([p], SamplingParams(max_new_tokens=12, temperature=0))[0]
        assert alone.token_ids == o.token_ids  # left padding in a batch changes nothing
        seq = list(p)
        for t in o.token_ids:  # argmax of a plain full forward pass, token by token
            logits = engine.model(input_ids=torch.tensor([seq])).logits[0, -1]
            assert int(logits.argmax()) == t
            seq.append(t)


@pytest.mark.parametrize("temperature", [1.0, 0.7, 1.3])
def test_log_probs_equal_a_forward_pass(engine, temperature):
    outs = engine.generate(
        PROMPTS, SamplingParams(max_new_tokens=25, temperature=temperature, top_p=0.9, seed=3)
    )
    ref = sequence_log_probs(
        engine.model,
        [p + o.token_ids for p, o in zip(PROMPTS, outs)],
        [len(p) for p in PROMPTS],
        temperature=temperature,
        chunk_size=2,
    )
    for o, r in zip(outs, ref):
        assert len(r) == len(o.log_probs)
        torch.testing.assert_close(torch.tensor(o.log_probs), torch.tensor(r), atol=1e-4, rtol=1e-4)


def test_stop_strings_are_honoured_and_included(engine):
    outs = engine.generate(
        PROMPTS * 3, SamplingParams(max_new_tokens=60, seed=11, stop=("e", "<tool_call>"))
    )
    stopped = [o for o in outs if o.finish_reason == "stop"]
    assert stopped
    for o in stopped:
        assert (
            o.stop_string in TOK.decode(o.token_ids[-1:], skip_special_tokens=False)
            or o.stop_string in o.text[-len(o.stop_string) - 20 :]
        )
        before = TOK.decode(o.token_ids[:-1], skip_special_tokens=False)
        assert o.stop_string not in before  # stopped at the first occurrence


def test_seeded_determinism_and_top_k_one_is_greedy(engine):
    p = SamplingParams(max_new_tokens=30, seed=42)
    a, b = engine.generate(PROMPTS, p), engine.generate(PROMPTS, p)
    assert [o.token_ids for o in a] == [o.token_ids for o in b]
    c = engine.generate(PROMPTS, SamplingParams(max_new_tokens=30, seed=43))
    assert [o.token_ids for o in a] != [o.token_ids for o in c]
    greedy = engine.generate(PROMPTS, SamplingParams(max_new_tokens=10, temperature=0))
    top1 = engine.generate(PROMPTS, SamplingParams(max_new_tokens=10, top_k=1, seed=1))
    tiny_p = engine.generate(PROMPTS, SamplingParams(max_new_tokens=10, top_p=1e-6, seed=2))
    assert (
        [o.token_ids for o in greedy]
        == [o.token_ids for o in top1]
        == [o.token_ids for o in tiny_p]
    )


def _nucleus_by_full_sort(logp_V: torch.Tensor, top_p: float, top_k: int) -> dict[int, float]:
    """The reference: sort one row whole, cut it token by token, renormalise."""
    order = sorted(range(len(logp_V)), key=lambda v: -float(logp_V[v]))
    if 0 < top_k < len(order):
        order = order[:top_k]
    probs = [float(logp_V[v].exp()) for v in order]
    z = sum(probs)
    kept, before = {}, 0.0
    for v, p in zip(order, probs):
        if top_p < 1.0 and before >= top_p:
            break
        kept[v] = p / z
        before += p / z
    total = sum(kept.values())
    return {v: p / total for v, p in kept.items()}


def _as_dict(probs_M: torch.Tensor, ids_M) -> dict[int, float]:
    ids = range(len(probs_M)) if ids_M is None else ids_M.tolist()
    total = float(probs_M.sum())
    return {v: float(p) / total for v, p in zip(ids, probs_M) if p > 0}


@pytest.mark.parametrize(
    "top_p, top_k", [(1.0, 0), (1.0, 2), (0.8, 0), (0.81, 0), (0.6, 0), (0.95, 3), (1e-6, 0)]
)
def test_nucleus_is_the_set_a_full_sort_gives(top_p, top_k):
    small = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05], [0.05, 0.15, 0.3, 0.5]]))
    gen = torch.Generator().manual_seed(0)
    # a wide, flat row: the nucleus of 0.95 needs more than the first 64 tokens (full sort)
    wide = torch.log_softmax(torch.randn(3, 300, generator=gen) * 0.3, dim=-1)
    for logp_BV in (small, wide):
        probs_BM, ids_BM = nucleus(logp_BV, top_p, top_k)
        for b in range(logp_BV.shape[0]):
            want = _nucleus_by_full_sort(logp_BV[b], top_p, top_k)
            got = _as_dict(probs_BM[b], None if ids_BM is None else ids_BM[b])
            assert got.keys() == want.keys()
            assert all(abs(got[v] - want[v]) < 1e-5 for v in want)


def test_nucleus_cuts_where_the_mass_before_a_token_reaches_top_p():
    logp = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    assert sorted(_kept(logp, 0.8)) == [0, 1]  # 0.5 + 0.3 reaches 0.8
    assert sorted(_kept(logp, 0.81)) == [0, 1, 2]
    assert sorted(_kept(logp, 1.0, top_k=2)) == [0, 1]


def _kept(logp, top_p, top_k=-1):
    probs_BM, ids_BM = nucleus(logp, top_p, top_k)
    return _as_dict(probs_BM[0], None if ids_BM is None else ids_BM[0]).keys()


@pytest.mark.parametrize("top_p, top_k", [(1.0, 0), (0.81, 0), (1.0, 2)])
def test_sample_tokens_draws_from_the_nucleus(top_p, top_k):
    logp = torch.log(torch.tensor([0.5, 0.3, 0.15, 0.05])).expand(20_000, 4)
    toks = sample_tokens(logp, top_p, top_k, torch.Generator().manual_seed(1))
    freq = torch.bincount(toks, minlength=4).float() / len(toks)
    want = _nucleus_by_full_sort(logp[0], top_p, top_k)
    for v in range(4):
        assert abs(float(freq[v]) - want.get(v, 0.0)) < 0.015  # ~4 standard errors
    again = sample_tokens(logp, top_p, top_k, torch.Generator().manual_seed(1))
    assert torch.equal(toks, again)  # the same generator state gives the same tokens


def test_sampling_params_validation():
    for bad in (
        dict(max_new_tokens=-1),
        dict(max_new_tokens=1, top_p=0.0),
        dict(max_new_tokens=1, top_k=0),
        dict(max_new_tokens=1, temperature=-1),
    ):
        with pytest.raises(ValueError):
            SamplingParams(**bad)


def test_from_pretrained_round_trip(tmp_path):
    path = create_tiny_checkpoint(tmp_path / "tiny", seed=0)
    eng = HFEngine.from_pretrained(str(path), dtype="float32", device="cpu")
    direct = HFEngine(build_model(TOK, seed=0), TOK)
    p = SamplingParams(max_new_tokens=15, temperature=0)
    assert [o.token_ids for o in eng.generate(PROMPTS, p)] == [
        o.token_ids for o in direct.generate(PROMPTS, p)
    ]


# --- the Qwen3 decode path: the same tokens and log-probs as the model's own forward ----------


def _same_completions(model, prompts, params) -> None:
    fast, plain = HFEngine(model, TOK), HFEngine(model, TOK, fast_decode=False)
    assert fast.fast_decode and not plain.fast_decode
    a, b = fast.generate(prompts, params), plain.generate(prompts, params)
    assert [(o.token_ids, o.log_probs, o.finish_reason) for o in a] == [
        (o.token_ids, o.log_probs, o.finish_reason) for o in b
    ]


@pytest.mark.parametrize("size", sorted(TINY_SPECS["tiny"]))
def test_fast_decode_is_bit_identical_on_every_zoo_shape(size):
    # grouped-query (0.6b, 4b, 14b) and plain (1.7b) attention; padded prompts, then equal
    # lengths (transformers then gives SDPA no mask at all); sampling and greedy
    model = build_model(TOK, TINY_SPECS["tiny"][size], seed=1)
    with torch.no_grad():  # sharper than a fresh init, so that rows differ and some stop
        for p in model.parameters():
            p.mul_(2.5)
    params = SamplingParams(max_new_tokens=40, top_p=0.9, seed=5, stop=("</code>",))
    _same_completions(model, PROMPTS, params)
    _same_completions(model, [PROMPTS[2]] * 3, params)
    _same_completions(model, PROMPTS, SamplingParams(max_new_tokens=20, temperature=0))


def test_fast_decode_cache_growth(monkeypatch):
    monkeypatch.setattr(Qwen3Decoder, "HEADROOM", 3)  # grows at 3, 6, 12, 24 new tokens
    _same_completions(build_model(TOK, seed=2), PROMPTS, SamplingParams(max_new_tokens=30, seed=1))


def test_fast_decode_only_where_it_is_the_same_arithmetic():
    model = build_model(TOK, seed=0)
    assert Qwen3Decoder.supports(model)
    model.config._attn_implementation = "eager"  # eager attention: softmax of its own
    assert not Qwen3Decoder.supports(model) and not HFEngine(model, TOK).fast_decode
