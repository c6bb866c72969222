"""Config, profiles and the Chinchilla budget arithmetic of STUDY.md section 1."""
import json

import pytest

from duckling import config, pipeline
from duckling.errors import DucklingError


def test_full_model_parameter_count_and_seed_budget_table():
    cfg = config.build("10pct")
    assert 2.85e6 < cfg.n_params < 2.95e6  # "about 2.9M"
    # the seed's table: 10% about 1,427 steps, 50% about 7,135, 100% about 14,270 (batch 8 x 512)
    for profile, seed_steps in (("10pct", 1427), ("50pct", 7135), ("100pct", 14270)):
        steps = config.build(profile).steps
        assert abs(steps - seed_steps) / seed_steps < 0.01, (profile, steps)
    assert cfg.tokens_per_step == 4096
    assert cfg.steps == round(0.1 * 20 * cfg.n_params / 4096)


def test_fraction_and_overrides_apply_on_top_of_a_profile():
    cfg = config.build("demo", fraction=0.02, overrides=config.parse_overrides(["lr=3e-4", "precision=pure-bf16"]))
    assert cfg.fraction == 0.02 and cfg.lr == 3e-4 and cfg.precision == "pure-bf16"
    assert cfg.steps == round(0.02 * 20 * cfg.n_params / 4096)
    assert cfg.run == "demo-f0.02"


@pytest.mark.parametrize("bad, match", [
    (["nope=1"], "no such config field"),
    (["lr=fast"], "expected a float"),
    (["lr"], "NAME=VALUE"),
    (["tied=maybe"], "expected a bool"),
])
def test_bad_overrides_are_one_line_errors(bad, match):
    with pytest.raises(DucklingError, match=match):
        config.parse_overrides(bad)


def test_bad_profile_fraction_precision():
    with pytest.raises(DucklingError, match="unknown profile"):
        config.build("huge")
    with pytest.raises(DucklingError, match="above 0"):
        config.build("demo", fraction=0)
    with pytest.raises(DucklingError, match="precision"):
        config.build("demo", overrides={"precision": "fp8"})


def test_resolve_writes_nothing_and_later_stages_read_what_the_stage_saved(root):
    cfg = config.resolve(profile="smoke", set_=["lr=0.01"])
    assert not (root / "runs").exists()  # only a stage that runs writes the config
    pipeline.settle("corpus", cfg, force=False)
    saved = json.loads((root / "runs" / "smoke" / "config.json").read_text())
    assert saved["lr"] == 0.01 and saved["derived"]["steps"] == cfg.steps
    again = config.resolve(run="smoke")  # no profile, no overrides: the saved config
    assert again.lr == 0.01 and again.to_dict() == cfg.to_dict()
    assert config.resolve(run="smoke", set_=["eval_every=3"]).lr == 0.01  # --set applies on the saved config
    with pytest.raises(DucklingError, match="no such run"):
        config.load("missing")


def test_default_profile_is_demo_offline(monkeypatch, root):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert config.default_profile() == "demo"
    assert config.resolve().profile == "demo"
