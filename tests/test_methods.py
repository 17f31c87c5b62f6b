"""Invariants of the method registry (sodctl.methods) and its link to the config and files."""

from __future__ import annotations

import dataclasses

import pytest

from sodctl.config import available_experiments
from sodctl.config.schema import METHOD_SWITCHES, MethodConfig
from sodctl.methods import (
    ABLATIONS,
    METHODS,
    TABLE_ROWS,
    MethodSpec,
    UnknownMethodError,
    canonical_name,
    get_method,
)

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("table", sorted(TABLE_ROWS))
def test_every_table_row_resolves(table):
    for name, label in TABLE_ROWS[table]:
        assert label
        assert get_method(name).name == canonical_name(name)


def test_table1_rows_are_the_paper_methods_in_order():
    names = [n for n, _ in TABLE_ROWS["table1"]]
    assert names == ["vanilla", "sft", "grpo", "opd-gated", "opsd-gt", "opsd-hint", "sod"]


def test_table1_opd_is_the_released_gated_form_and_table2_uniform_is_another_run():
    # the paper's OPD (36.27) and (1.1) uniform (34.70) rows differ: two methods, two runs
    assert dict(TABLE_ROWS["table1"])["opd-gated"] == "OPD" == dict(TABLE_ROWS["table5"])["opd-gated"]
    gated, uniform = get_method("opd-gated"), get_method("uniform-weighting")
    assert (gated.grpo, gated.opd, gated.weighting, gated.teacher) == (True, True, "gated", "external")
    assert uniform.name == "opd" and uniform.weighting == "uniform" and uniform.ablation_id == "1.1"
    with pytest.raises(ValueError, match="gated weighting needs the GRPO term"):
        MethodSpec("x", "x", "x", "rl", opd=True, weighting="gated", teacher="external")


def test_table2_ablation_ids_in_order():
    ids = [get_method(n).ablation_id for n, _ in TABLE_ROWS["table2"][:-1]]
    assert ids == ["1.1", "1.2", "1.3", "1.4", "2.1", "2.2"]
    assert TABLE_ROWS["table2"][-1][0] == "sod"
    for (name, label), ablation_id in zip(TABLE_ROWS["table2"], ids, strict=False):
        assert label.startswith(f"({ablation_id})"), name


def test_ablations_are_table2_variants_plus_naive_opd():
    assert ABLATIONS[-1] == "naive-opd"
    assert set(ABLATIONS[:-1]) == {n for n, _ in TABLE_ROWS["table2"][:-1]}
    for name in ABLATIONS:
        spec = get_method(name)
        assert spec.stage == "rl"


def test_aliases():
    assert canonical_name("uniform-weighting") == "opd"
    assert canonical_name("no-stepwise-opd") == "grpo"
    assert canonical_name("sod-no-grpo") == "no-grpo"
    aliases = [a for m in METHODS.values() for a in m.aliases]
    assert len(aliases) == len(set(aliases))
    assert not set(aliases) & set(METHODS)


def test_unknown_method_message_lists_choices():
    with pytest.raises(UnknownMethodError) as info:
        get_method("sdo")
    message = str(info.value)
    assert (
        message.startswith("unknown method 'sdo'")
        and "sod" in message
        and "uniform-weighting" in message
    )


@pytest.mark.parametrize("name", sorted(METHODS))
def test_every_method_is_consistent(name):
    spec = METHODS[name]
    assert spec.name == name and spec.label and spec.description
    assert spec.needs_teacher_model == (spec.teacher == "external")
    settings = spec.settings()
    assert "aliases" not in settings and set(METHOD_SWITCHES) <= set(settings)


def test_the_paper_methods():
    sod = get_method("sod")
    assert (sod.grpo, sod.opd, sod.weighting, sod.clip_weights, sod.teacher) == (
        True,
        True,
        "sod",
        True,
        "external",
    )
    assert get_method("opd").weighting == "uniform"
    assert not get_method("naive-opd").grpo and get_method("naive-opd").weighting == "uniform"
    assert not get_method("no-grpo").grpo and get_method("no-grpo").weighting == "sod"
    assert not get_method("no-clipping").clip_weights
    assert (
        get_method("opsd-gt").privileged == "solution" and get_method("opsd-gt").teacher == "self"
    )
    assert get_method("opsd-hint").privileged == "hint"
    assert get_method("vanilla").stage == "base" and get_method("sft").stage == "sft"


@pytest.mark.parametrize(
    "switches",
    [
        {"stage": "rl", "grpo": True, "opd": True, "weighting": "none", "teacher": "external"},
        {"stage": "rl", "grpo": True, "opd": False, "weighting": "sod"},
        {"stage": "rl", "grpo": True, "opd": True, "weighting": "sod", "teacher": "none"},
        {"stage": "rl", "opd": True, "weighting": "sod", "teacher": "self"},
        {"stage": "sft", "grpo": True},
        {"stage": "rl"},
    ],
)
def test_invalid_switch_combinations_are_refused(switches):
    with pytest.raises(ValueError):
        MethodSpec("x", "X", "x", **switches)


def test_config_method_section_mirrors_the_switches():
    section = {f.name for f in dataclasses.fields(MethodConfig)}
    assert section == {"name", *METHOD_SWITCHES}
    spec_fields = {f.name for f in dataclasses.fields(MethodSpec)}
    assert set(METHOD_SWITCHES) <= spec_fields
    defaults, spec = MethodConfig(), get_method(MethodConfig().name)
    for switch in METHOD_SWITCHES:  # the schema's defaults are the default method's switches
        assert getattr(defaults, switch) == getattr(spec, switch), switch


def test_every_row_and_ablation_has_an_experiment_file():
    known = set(available_experiments())
    for size in ("0.6b", "1.7b"):
        for name, _ in TABLE_ROWS["table1"]:
            assert f"table1/{name}-{size}" in known
    for name in ABLATIONS:
        assert (f"table2/{name}" in known) or (f"table5/{name}" in known), name
