"""MaskConfig validation: each bad input gives one documented, one-line error."""

from __future__ import annotations

import dask.base
import numpy as np
import pytest

import clearcube as cc
from clearcube import ConfigError, Flag, MaskConfig, load_config
from clearcube.resources import config_names, config_path


def one_line(exc: pytest.ExceptionInfo[BaseException]) -> str:
    text = str(exc.value)
    assert "\n" not in text, text
    return text


def test_defaults():
    cfg = MaskConfig()
    assert cfg.masked_flags == ("CLOUD", "CIRRUS", "SHADOW", "DILATED", "SATURATED")
    assert cfg.confidence_tiers == (2, 3)
    assert cfg.scl_medium_as_cloud is True
    assert cfg.cloud_threshold == 0.30
    assert cfg.dilation_m == 0.0
    assert cfg.fallback == "exclude"
    assert cfg.masked_bits == int(
        Flag.CLOUD | Flag.CIRRUS | Flag.SHADOW | Flag.DILATED | Flag.SATURATED
    )
    assert not cfg.masked_bits & (Flag.SNOW | Flag.WATER | Flag.NODATA)


def test_tiers_and_flags_are_normalised():
    cfg = MaskConfig(confidence_tiers=[3, 2, 3], masked_flags=["cloud", Flag.SHADOW, "Cirrus"])
    assert cfg.confidence_tiers == (2, 3)
    assert cfg.masked_flags == ("CLOUD", "SHADOW", "CIRRUS")
    assert MaskConfig(confidence_tiers=()).confidence_tiers == ()
    assert MaskConfig(crs=32633).crs == "EPSG:32633"


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"crs": "EPSG:4326", "resolution": 10}, r"10 degrees per pixel.*projected CRS"),
        ({"crs": "EPSG:32633", "resolution": 0.0001}, r"0\.0001 metres per pixel"),
        ({"masked_flags": ["CLOUD", "HAZE"]}, r"unknown flag 'HAZE'; valid flags: NODATA"),
        ({"masked_flags": ["NODATA"]}, r"NODATA cannot be masked"),
        ({"confidence_tiers": (2, 4)}, r"tier 4 outside 0-3"),
        ({"confidence_tiers": (-1,)}, r"tier -1 outside 0-3"),
        ({"cloud_threshold": 1.5}, r"threshold 1\.5 outside \[0, 1\]"),
        ({"cloud_threshold": -0.1}, r"threshold -0\.1 outside \[0, 1\]"),
        ({"cloud_threshold": float("nan")}, r"outside \[0, 1\]"),
        ({"dilation_m": -5}, r"dilation -5\.0 m"),
        ({"despeckle_px": -1}, r"despeckle -1 px"),
        ({"crs": "EPSG:999999"}, r"unknown CRS 'EPSG:999999'"),
        ({"resolution": 0}, r"resolution 0\.0 must be a positive"),
        ({"fallback": "clear"}, r"fallback: .*'exclude', 'review' or 'fail'"),
        ({"on_undefined": "clear"}, r"on_undefined"),
        (
            {"cloud_treshold": 0.3},
            r"cloud_treshold: unknown option; valid options: .*cloud_threshold",
        ),
    ],
)
def test_bad_input_gives_one_line_config_error(kwargs, pattern):
    with pytest.raises(ConfigError, match=pattern) as exc:
        MaskConfig(**kwargs)
    one_line(exc)
    assert isinstance(exc.value, ValueError)


def test_geographic_crs_with_degrees_is_fine():
    assert MaskConfig(crs="EPSG:4326", resolution=0.0001).resolution == 0.0001


def test_frozen_hashable_and_tokenizable():
    a, b = MaskConfig(), MaskConfig()
    assert a == b
    assert hash(a) == hash(b)
    assert a.digest() == b.digest() != MaskConfig(dilation_m=30).digest()
    assert dask.base.tokenize(a) == dask.base.tokenize(b)
    assert dask.base.tokenize(a) != dask.base.tokenize(MaskConfig(confidence_tiers=()))
    with pytest.raises(Exception, match="frozen"):
        a.cloud_threshold = 0.5  # type: ignore[misc]


def test_shipped_configs_load():
    default = load_config(config_path("default"))
    assert default == MaskConfig()
    tropics = MaskConfig.from_toml(config_path("humid-tropics"))
    assert tropics.scl_medium_as_cloud is False
    assert 2 not in tropics.confidence_tiers
    assert 3 in tropics.confidence_tiers
    # the tropics profile keeps SCL 8 and Landsat medium-confidence pixels usable
    scl8 = cc.decode(np.array([8], np.uint8), "s2-scl", tropics)
    medium = np.array([0b0000_0010_0000_0000], np.uint16)  # cloud confidence 2, no bit 3
    assert cc.is_clear(scl8, tropics)[0]
    assert cc.is_clear(cc.decode(medium, "landsat-qa-pixel", tropics), tropics)[0]
    assert not cc.is_clear(cc.decode(medium, "landsat-qa-pixel", default), default)[0]


def test_toml_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[mask]\nconfidence_tiers = [5]\n")
    with pytest.raises(ConfigError, match=r"bad\.toml \[mask\]: confidence_tiers: tier 5") as exc:
        load_config(bad)
    one_line(exc)
    broken = tmp_path / "broken.toml"
    broken.write_text("[mask\n")
    with pytest.raises(ConfigError, match=r"broken\.toml: not valid TOML"):
        load_config(broken)
    with pytest.raises(ConfigError, match=r"config file not found"):
        load_config(tmp_path / "missing.toml")


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        (
            "[serch]\nsource = 'x'\n",
            r"unknown top-level table 'serch' \(did you mean \[search\]\?\)",
        ),
        ("[mask]\n[masks]\ndilation_m = 30\n", r"unknown top-level table 'masks'"),
        ("[output]\ndir = 'out'\n", r"unknown top-level table 'output'; valid tables"),
        ("cloud_threshold = 0.3\n", r"unknown top-level key 'cloud_threshold'"),
        ("search = 3\n", r"search must be a table \(\[search\]\), not a value"),
    ],
)
def test_unknown_top_level_tables_are_refused(tmp_path, text, pattern):
    from clearcube.runconfig import load_run_config

    path = tmp_path / "run.toml"
    path.write_text(text)
    for loader in (load_run_config, load_config):
        with pytest.raises(ConfigError, match=pattern) as exc:
            loader(path)
        message = one_line(exc)
        assert message.startswith(f"{path}: ")
        assert message.endswith("valid tables: [search], [load], [mask], [composite]")


def test_the_mask_loader_knows_the_run_config_tables():
    from clearcube.config import RUN_TABLES
    from clearcube.runconfig import RunConfig, load_run_config

    assert tuple(RunConfig.model_fields) == RUN_TABLES
    assert config_names() == ("default", "humid-tropics")
    for name in config_names():
        run_config = load_run_config(config_path(name))
        assert run_config.mask == load_config(config_path(name))
