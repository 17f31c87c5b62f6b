"""Local SFT and pretraining: the assistant-only loss mask, the loop, exact resume, the CLI."""

from __future__ import annotations

import itertools
import json
import shutil

import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

from sodctl.cli import main
from sodctl.config import load_config
from sodctl.data.corpora import sft_conversations
from sodctl.engines.local.sft import (
    PRETRAINED_MARKER,
    sft_examples,
    tokenize_conversation,
    train_sft,
)
from sodctl.engines.local.supervised import accumulate_gradients
from sodctl.errors import SodctlUsageError
from sodctl.models.tiny import TinyModelSpec, build_tokenizer, create_tiny_checkpoint

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "code_interpreter",
            "description": "Run Python.",
            "parameters": {"type": "object", "properties": {"code": {"type": "string"}}},
        },
    }
]


def _call(code: str) -> dict:
    return {
        "type": "function",
        "function": {"name": "code_interpreter", "arguments": {"code": code}},
    }


def arithmetic(a: int, b: int, c: int, *, system: bool = False) -> list[dict]:
    """Compute a*b+c: call the tool, then copy its answer into \\boxed{}."""
    msgs = [{"role": "system", "content": "Be brief."}] if system else []
    return [
        *msgs,
        {"role": "user", "content": f"Compute {a} * {b} + {c}."},
        {"role": "assistant", "content": "", "tool_calls": [_call(f"{a} * {b} + {c}")]},
        {"role": "tool", "content": str(a * b + c)},
        {"role": "assistant", "content": f"\\boxed{{{a * b + c}}}"},
    ]


CONVERSATIONS = [arithmetic(12 + 7 * i, 31 + 5 * i, 3 + i, system=i % 3 == 0) for i in range(10)]


def masked_runs(tok, ids: list[int], mask: list[int]) -> tuple[list[str], list[str]]:
    """Decoded runs of mask 1 and of mask 0."""
    runs: dict[int, list[str]] = {0: [], 1: []}
    pairs = list(zip(ids, mask))
    for m, group in itertools.groupby(pairs, key=lambda p: p[1]):
        runs[m].append(tok.decode([i for i, _ in group], skip_special_tokens=False))
    return runs[1], runs[0]


@pytest.fixture(scope="module")
def tok():
    return build_tokenizer()


# --- the loss mask ----------------------------------------------------------------------------


@pytest.mark.unit
def test_mask_covers_exactly_the_assistant_tokens(tok):
    msgs = arithmetic(47, 83, 19, system=True)
    ids, mask = tokenize_conversation(tok, msgs, TOOLS)
    full = tok.apply_chat_template(msgs, tools=TOOLS, tokenize=False)
    assert tok.decode(ids, skip_special_tokens=False) == full
    trained, other = masked_runs(tok, ids, mask)
    assert trained == [
        '<tool_call>\n{"name": "code_interpreter", "arguments": {"code": "47 * 83 + 19"}}\n'
        "</tool_call><|im_end|>",
        "\\boxed{3920}<|im_end|>",
    ]
    # the template's turn openers, the observation and the system/user turns are all masked
    assert other[0].endswith("Compute 47 * 83 + 19.<|im_end|>\n<|im_start|>assistant\n")
    assert "Be brief." in other[0] and "code_interpreter" in other[0]
    assert other[1] == (
        "\n<|im_start|>user\n<tool_response>\n3920\n</tool_response><|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    assert other[2] == "\n"


# Our own template with the structure of Qwen3's: thinking kept only for the turns after
# the last user query, an empty think block on a final turn without one, tools in the
# system turn. It is not prefix-stable: a later user query strips earlier thinking.
QWEN3_LIKE = (
    "{%- if tools %}{{- '<|im_start|>system\\n' }}"
    "{%- if messages[0].role == 'system' %}{{- messages[0].content + '\\n\\n' }}{%- endif %}"
    "{{- '# Tools\\n<tools>' }}{%- for t in tools %}{{- '\\n' + (t | tojson) }}{%- endfor %}"
    "{{- '\\n</tools><|im_end|>\\n' }}"
    "{%- elif messages[0].role == 'system' %}"
    "{{- '<|im_start|>system\\n' + messages[0].content + '<|im_end|>\\n' }}{%- endif %}"
    "{%- set ns = namespace(last_query=-1) %}"
    "{%- for m in messages %}{%- if m.role == 'user' %}{%- set ns.last_query = loop.index0 %}"
    "{%- endif %}{%- endfor %}"
    "{%- for m in messages %}"
    "{%- set content = m.content if m.content is string else '' %}"
    "{%- if m.role == 'user' or (m.role == 'system' and not loop.first) %}"
    "{{- '<|im_start|>' + m.role + '\\n' + content + '<|im_end|>\\n' }}"
    "{%- elif m.role == 'assistant' %}"
    "{%- set reasoning = '' %}"
    "{%- if '</think>' in content %}"
    "{%- set reasoning = content.split('</think>')[0].split('<think>')[-1].strip('\\n') %}"
    "{%- set content = content.split('</think>')[-1].lstrip('\\n') %}"
    "{%- endif %}"
    "{%- if loop.index0 > ns.last_query and (loop.last or reasoning) %}"
    "{{- '<|im_start|>assistant\\n<think>\\n' + reasoning + '\\n</think>\\n\\n' + content }}"
    "{%- else %}{{- '<|im_start|>assistant\\n' + content }}{%- endif %}"
    "{%- for call in m.tool_calls or [] %}"
    "{%- if content or not loop.first %}{{- '\\n' }}{%- endif %}"
    '{{- \'<tool_call>\\n{"name": "\' + call.function.name + \'", "arguments": \' }}'
    "{{- call.function.arguments | tojson }}{{- '}\\n</tool_call>' }}"
    "{%- endfor %}"
    "{{- '<|im_end|>\\n' }}"
    "{%- elif m.role == 'tool' %}"
    "{%- if loop.first or messages[loop.index0 - 1].role != 'tool' %}"
    "{{- '<|im_start|>user' }}{%- endif %}"
    "{{- '\\n<tool_response>\\n' + content + '\\n</tool_response>' }}"
    "{%- if loop.last or messages[loop.index0 + 1].role != 'tool' %}"
    "{{- '<|im_end|>\\n' }}{%- endif %}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}"
    "{%- if enable_thinking is defined and enable_thinking is false %}"
    "{{- '<think>\\n\\n</think>\\n\\n' }}{%- endif %}{%- endif %}"
)


@pytest.fixture(scope="module")
def qwen_tok():
    t = build_tokenizer()
    t.chat_template = QWEN3_LIKE
    return t


@pytest.mark.unit
def test_mask_with_a_qwen3_style_template_keeps_thinking_and_the_empty_think_block(qwen_tok):
    msgs = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "What is 3+4?"},
        {
            "role": "assistant",
            "content": "<think>\nUse the tool.\n</think>\n\nLet me run it.",
            "tool_calls": [_call("print(3+4)")],
        },
        {"role": "tool", "content": "7"},
        {"role": "assistant", "content": "The answer is \\boxed{7}."},
    ]
    ids, mask = tokenize_conversation(qwen_tok, msgs, TOOLS)
    trained, other = masked_runs(qwen_tok, ids, mask)
    assert trained == [
        "<think>\nUse the tool.\n</think>\n\nLet me run it.\n<tool_call>\n"
        '{"name": "code_interpreter", "arguments": {"code": "print(3+4)"}}\n</tool_call><|im_end|>',
        "<think>\n\n</think>\n\nThe answer is \\boxed{7}.<|im_end|>",
    ]
    assert all(o.endswith("<|im_start|>assistant\n") for o in other[:2])


@pytest.mark.unit
def test_mask_when_a_later_user_query_rewrites_earlier_turns(qwen_tok):
    """Not prefix-stable: the whole rendering drops the thinking of turns before the last query."""
    msgs = [
        {"role": "user", "content": "q1"},
        {"role": "assistant", "content": "<think>\nr1\n</think>\n\na1", "tool_calls": [_call("1")]},
        {"role": "tool", "content": "1"},
        {"role": "assistant", "content": "<think>\nr2\n</think>\n\na2"},
        {"role": "user", "content": "q2"},
        {"role": "assistant", "content": "<think>\nr3\n</think>\n\na3"},
    ]
    full = qwen_tok.apply_chat_template(msgs, tokenize=False)
    prefix = qwen_tok.apply_chat_template(msgs[:3], tokenize=False, add_generation_prompt=True)
    assert not full.startswith(prefix)  # the case the fallback exists for
    ids, mask = tokenize_conversation(qwen_tok, msgs)
    assert qwen_tok.decode(ids, skip_special_tokens=False) == full
    trained, _ = masked_runs(qwen_tok, ids, mask)
    assert trained == [
        'a1\n<tool_call>\n{"name": "code_interpreter", "arguments": {"code": "1"}}\n</tool_call><|im_end|>',
        "a2<|im_end|>",
        "<think>\nr3\n</think>\n\na3<|im_end|>",
    ]


@pytest.mark.unit
def test_right_truncation_keeps_the_start(tok):
    msgs = arithmetic(47, 83, 19)
    ids, mask = tokenize_conversation(tok, msgs, TOOLS)
    n = len(ids) - 9  # cuts into the final answer
    cut_ids, cut_mask = tokenize_conversation(tok, msgs, TOOLS, max_length=n)
    assert (cut_ids, cut_mask) == (ids[:n], mask[:n])
    left = tokenize_conversation(tok, msgs, TOOLS, max_length=n, truncation="left")
    assert left == (ids[-n:], mask[-n:])
    with pytest.raises(SodctlUsageError, match="max_length"):
        tokenize_conversation(tok, msgs, TOOLS, max_length=n, truncation="error")
    assert tokenize_conversation(tok, msgs, TOOLS, max_length=len(ids)) == (ids, mask)


@pytest.mark.unit
def test_conversations_survive_a_parquet_round_trip(tmp_path, tok):
    path = _write_sft(tmp_path / "sft.parquet")
    cfg = load_config(None, method="sft", overrides=[f"data.sft_path={path}"])
    read = sft_conversations(cfg)
    assert [c.messages for c in read] == CONVERSATIONS and read[0].tools == TOOLS
    examples = sft_examples(read, tok, cfg.sft)
    assert examples[1].input_ids == tokenize_conversation(tok, CONVERSATIONS[1], TOOLS)[0]


# --- the loop -----------------------------------------------------------------------------------

SPEC = TinyModelSpec(
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=2,
    num_attention_heads=2,
    num_key_value_heads=1,
    head_dim=32,
)


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    return create_tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny", SPEC, seed=0)


def _write_sft(path, conversations=CONVERSATIONS):
    frame = pd.DataFrame(
        {"messages": conversations, "tools": [json.dumps(TOOLS)] * len(conversations)}
    )
    frame.to_parquet(path)
    return path


@pytest.fixture(scope="module")
def sft_file(tmp_path_factory):
    return _write_sft(tmp_path_factory.mktemp("data") / "sft.parquet")


@pytest.mark.integration
def test_steps_on_a_fixed_batch_reduce_the_loss_and_micro_batches_change_nothing(ckpt, tok):
    from transformers import AutoModelForCausalLM

    from sodctl.engines.local.supervised import Example

    model = AutoModelForCausalLM.from_pretrained(ckpt, dtype=torch.float32)
    batch = [Example(*tokenize_conversation(tok, c, TOOLS)) for c in CONVERSATIONS[:5]]
    cpu = torch.device("cpu")

    accumulate_gradients(model, batch, None, tok.pad_token_id, cpu)
    whole = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    accumulate_gradients(model, batch, 2, tok.pad_token_id, cpu)
    for g, p in zip(whole, model.parameters()):
        torch.testing.assert_close(p.grad, g, rtol=1e-5, atol=1e-6)
    model.zero_grad()

    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(15):
        losses.append(accumulate_gradients(model, batch, None, tok.pad_token_id, cpu))
        opt.step()
        opt.zero_grad()
    assert losses[-1] < 0.6 * losses[0], losses


def test_summed_loss_is_the_masked_cross_entropy_of_the_full_forward(ckpt, tok):
    """Logits only at targets, no attention mask: the loss and gradients of the plain way
    (full logits, padding masked), on a right-padded batch of unequal lengths."""
    import torch.nn.functional as F
    from transformers import AutoModelForCausalLM

    from sodctl.engines.local.run import logits_split
    from sodctl.engines.local.supervised import Example, collate, summed_loss

    model = AutoModelForCausalLM.from_pretrained(ckpt, dtype=torch.float32)
    assert logits_split(model) is not None
    batch = [Example(*tokenize_conversation(tok, c, TOOLS)) for c in CONVERSATIONS[:5]]
    assert len({len(e.input_ids) for e in batch}) > 1  # padding is exercised
    ids_BT, mask_BT = collate(batch, tok.pad_token_id, torch.device("cpu"))
    attn_BT = torch.zeros_like(ids_BT)
    for b, e in enumerate(batch):
        attn_BT[b, : len(e.input_ids)] = 1

    logits_BTV = model(input_ids=ids_BT, attention_mask=attn_BT).logits
    keep_BT = mask_BT[:, 1:].bool()
    want = F.cross_entropy(logits_BTV[:, :-1][keep_BT], ids_BT[:, 1:][keep_BT], reduction="sum")
    want.backward()
    want_grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    got = summed_loss(model, ids_BT, mask_BT)
    got.backward()
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-4)
    for g, p in zip(want_grads, model.parameters()):
        torch.testing.assert_close(p.grad, g, rtol=1e-4, atol=2e-5)


def test_a_model_that_changes_its_logits_gets_the_full_forward(ckpt, tok):
    from transformers import AutoModelForCausalLM, Qwen3ForCausalLM

    from sodctl.engines.local.run import logits_split

    class Capped(Qwen3ForCausalLM):  # as Gemma's softcapping does after the output layer
        def forward(self, *args, **kwargs):
            out = super().forward(*args, **kwargs)
            out.logits = 30.0 * torch.tanh(out.logits / 30.0)
            return out

    plain = AutoModelForCausalLM.from_pretrained(ckpt, dtype=torch.float32)
    capped = Capped.from_pretrained(ckpt, dtype=torch.float32)
    with torch.no_grad():
        for p in capped.parameters():
            p.mul_(20.0)  # logits large enough for the cap to bend them
    assert logits_split(plain) is not None and logits_split(capped) is None


def _cfg(ckpt, sft_file, out, *extra: str):
    return load_config(
        None,
        preset="smoke",
        method="sft",
        overrides=[
            f"model.path={ckpt}",
            f"data.sft_path={sft_file}",
            f"output_dir={out}",
            "experiment=sft-test",
            "logging.wandb_mode=disabled",
            "data.limit=null",
            "sft.max_length=512",
            "sft.batch_size=4",
            "sft.micro_batch_size=3",
            "sft.epochs=3",
            "sft.max_steps=null",
            "sft.lr=3e-3",
            "sft.warmup_ratio=0.2",
            "sft.lr_schedule=cosine",
            "sft.save_every=2",
            *extra,
        ],
    )


METRIC_KEYS = {
    "step",
    "train/loss",
    "train/lr",
    "train/grad_norm",
    "train/tokens",
    "train/epoch",
    "perf/step_time_s",
    "perf/tokens_per_s",
    "perf/peak_mem_gb",
}


class Killed(Exception):
    pass


@pytest.mark.integration
def test_train_sft_logs_checkpoints_and_resumes_exactly(ckpt, sft_file, tmp_path, capsys):
    # 10 conversations, batches of 4: 2 steps per epoch, 3 epochs = 6 steps
    final = train_sft(_cfg(ckpt, sft_file, tmp_path / "a"))
    run = tmp_path / "a" / "sft-test" / "run"
    assert final == tmp_path / "a" / "sft-test" / "final"
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3, 4, 5, 6]
    assert all(set(r) == METRIC_KEYS for r in rows)
    assert rows[0]["train/lr"] == pytest.approx(3e-3)  # warm-up of 1 step (0.2 * 6)
    assert rows[-1]["train/lr"] < rows[1]["train/lr"]  # cosine decay
    assert [r["train/epoch"] for r in rows] == [0.5, 1.0, 1.5, 2.0, 2.5, 3.0]
    assert all(r["train/tokens"] > 0 and r["perf/peak_mem_gb"] > 0 for r in rows)
    assert rows[-1]["train/loss"] < rows[0]["train/loss"]
    # keep_checkpoints=1: the newest (step 4; the end is the final model, not a checkpoint)
    (step4,) = (run / "checkpoints").iterdir()
    assert step4.name == "step-4"
    assert {"config.json", "model.safetensors", "tokenizer.json", "trainer.pt"} <= {
        p.name for p in step4.iterdir()
    }
    state = torch.load(step4 / "trainer.pt", weights_only=False)
    assert state["step"] == 4 and {"optimizer", "scheduler", "cursor", "rng"} <= set(state)
    assert state["cursor"] == {"epoch": 1, "position": 2, "n_examples": 10, "batch_size": 4}
    assert {"config.yaml", "run.json"} <= {p.name for p in run.iterdir()}
    trained = load_file(final / "model.safetensors")
    initial = load_file(ckpt / "model.safetensors")
    assert all(not torch.equal(trained[k], initial[k]) for k in initial)

    # the same run killed after step 5 (its last checkpoint: step 4), then resumed
    def kill(step, metrics):
        if step == 5:
            raise Killed

    cfg_b = _cfg(ckpt, sft_file, tmp_path / "b")
    with pytest.raises(Killed):
        train_sft(cfg_b, on_step=kill)
    with pytest.raises(SodctlUsageError, match="--resume"):
        train_sft(cfg_b)
    resumed = train_sft(cfg_b, resume=True)
    other = load_file(resumed / "model.safetensors")
    assert set(other) == set(trained)
    assert all(torch.equal(other[k], trained[k]) for k in trained)
    rows_b = [
        json.loads(line)
        for line in (tmp_path / "b" / "sft-test" / "run" / "metrics.jsonl").read_text().splitlines()
    ]
    assert [r["step"] for r in rows_b] == [1, 2, 3, 4, 5, 6]  # step 5 logged once, not twice
    assert [r["train/loss"] for r in rows_b] == [r["train/loss"] for r in rows]
    # a finished run says so and does nothing
    assert train_sft(cfg_b, resume=True) == resumed


# --- the CLI --------------------------------------------------------------------------------------


def _cli(capsys, *args: str) -> tuple[int, str, str]:
    rc = main(list(args))
    out, err = capsys.readouterr()
    return rc, out, err


def _one_line_error(rc: int, err: str) -> str:
    assert rc == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("sodctl: error: "), err
    return lines[0]


@pytest.mark.integration
def test_sft_steps_by_model_size_when_max_steps_is_null(ckpt, sft_file, tmp_path):
    # the model's size slot picks its step count; another slot's entry is ignored (the 4b
    # slot's own SFT set is pointed at the test file: the preset's teacher set otherwise)
    cfg = _cfg(ckpt, sft_file, tmp_path, "model.size=4b", "sft.max_steps_by_size[4b]=3",
               "sft.max_steps_by_size[0.6b]=1", f"data.sft_path_by_size[4b]={sft_file}")  # fmt: skip
    train_sft(cfg)
    rows = (tmp_path / "sft-test" / "run" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(r)["step"] for r in rows] == [1, 2, 3]  # not the 3 epochs' 6


def test_cli_sft_runs_the_local_engine(ckpt, sft_file, tmp_path, capsys):
    args = [
        "sft",
        "--preset",
        "smoke",
        "--max-steps",
        "2",
        f"model.path={ckpt}",
        f"data.sft_path={sft_file}",
        f"output_dir={tmp_path}",
        "logging.wandb_mode=disabled",
        "sft.max_length=512",
    ]
    rc, out, _ = _cli(capsys, *args)
    final = tmp_path / "sft-1.7b" / "final"
    assert rc == 0 and f"final model {final}" in out and "sft finished in" in out
    assert (final / "model.safetensors").is_file()
    rows = (tmp_path / "sft-1.7b" / "run" / "metrics.jsonl").read_text().splitlines()
    assert len(rows) == 2
    line = _one_line_error(*_cli(capsys, *args)[::2])
    assert "already finished" in line
    rc, out, err = _cli(capsys, *args, "--resume")
    assert rc == 0 and "already finished" in err


@pytest.mark.unit
def test_cli_sft_bad_input_is_one_line(ckpt, sft_file, tmp_path, capsys):
    common = ["sft", "--preset", "smoke", f"output_dir={tmp_path}", "logging.wandb_mode=disabled"]
    line = _one_line_error(
        *_cli(capsys, *common, f"model.path={ckpt}", "data.sft_path=/nonexistent/sft.parquet")[::2]
    )
    assert "no such file /nonexistent/sft.parquet" in line
    line = _one_line_error(
        *_cli(capsys, *common, "model.path=/nonexistent/model", f"data.sft_path={sft_file}")[::2]
    )
    assert "/nonexistent/model" in line and "not a directory" in line
    # the verl engine checks its inputs before verl is imported or anything is written
    line = _one_line_error(*_cli(capsys, *common, "--engine", "verl")[::2])
    assert "not a directory with a Hugging Face checkpoint" in line
    line = _one_line_error(*_cli(capsys, "sft", "table1/sft-0.6b", "--pretrain")[::2])
    assert "--pretrain takes no EXPERIMENT" in line
    assert not (tmp_path / "sft-1.7b").exists()  # nothing was started


@pytest.mark.integration
def test_cli_pretrain_upgrades_the_zoo_models_in_place(ckpt, tmp_path, capsys):
    sizes = ("0.6b", "1.7b", "4b", "14b")
    zoo = {size: tmp_path / "models" / size for size in sizes}
    for path in zoo.values():
        shutil.copytree(ckpt, path)
    texts = [
        f"{a} * {b} + {c} = {a * b + c}"
        for a, b, c in itertools.product(range(11, 15), range(21, 24), range(1, 3))
    ]
    pd.DataFrame({"text": texts}).to_parquet(tmp_path / "pretrain.parquet")
    common = [
        "sft",
        "--pretrain",
        "--preset",
        "smoke",
        *(f"zoo[{size}]={path}" for size, path in zoo.items()),
        f"data.pretrain_path={tmp_path / 'pretrain.parquet'}",
        f"output_dir={tmp_path / 'runs'}",
        "logging.wandb_mode=disabled",
        "data.limit=null",
    ]
    # one size: 24 texts in batches of 8, 3 steps
    rc, out, _ = _cli(
        capsys, *common, "--model", "0.6b", "pretrain.batch_size=8", "pretrain.max_steps=null"
    )
    assert rc == 0 and f"pretrain 0.6b: {zoo['0.6b']} holds the pretrained model" in out
    record = json.loads((zoo["0.6b"] / PRETRAINED_MARKER).read_text())
    assert record["run"] == str(tmp_path / "runs" / "pretrain-0.6b")
    assert not any((zoo[size] / PRETRAINED_MARKER).exists() for size in sizes[1:])
    weights = load_file(zoo["0.6b"] / "model.safetensors")
    initial = load_file(ckpt / "model.safetensors")
    assert all(not torch.equal(weights[k], initial[k]) for k in initial)
    run = tmp_path / "runs" / "pretrain-0.6b" / "run"
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 3 and all(set(r) == METRIC_KEYS for r in rows)
    # every token is a target but each text's first (8 texts a batch)
    assert rows[0]["train/tokens"] == pytest.approx(
        rows[0]["perf/tokens_per_s"] * rows[0]["perf/step_time_s"] - 8
    )

    # no --model: every zoo model; the pretrained one is left alone
    rc, out, err = _cli(capsys, *common, "--max-steps", "1")
    assert rc == 0 and "already pretrained" in err
    assert all((zoo[size] / PRETRAINED_MARKER).is_file() for size in sizes)
    assert load_file(zoo["0.6b"] / "model.safetensors").keys() == weights.keys()
    assert all(
        torch.equal(t, weights[k]) for k, t in load_file(zoo["0.6b"] / "model.safetensors").items()
    )

    line = _one_line_error(*_cli(capsys, *common[:-4], "data.pretrain_path=null")[::2])
    assert "data.pretrain_path" in line
    line = _one_line_error(*_cli(capsys, *common, "--model", str(ckpt))[::2])
    assert "no model path" in line
