"""Config schema, overrides, one-line errors, and the TOML round trip."""
import hashlib
import math
import tomllib

import pytest
from hypothesis import given
from hypothesis import strategies as st

import toy_experiment  # noqa: F401  (registers the "toy" kind)
from linkd.config import Config, ConfigError, Field, build_config, describe, dump_toml, parse_override, read_toml
from linkd.errors import InputError
from linkd.registry import load_config

SCHEMA = {
    "data": {
        "n": Field(int, 100, "samples", low=1),
        "noise": Field(float, 0.1, "label noise", low=0.0),
        "spectrum": Field(list[float], [1.0, 0.5], "eigenvalues", low=0.0, low_open=True),
        "dims": Field(list[int], [], "ints"),
        "kind": Field(str, "gauss", "design", choices=("gauss", "axis")),
    },
    "train": {
        "lr": Field(float, 0.5, "step", low=0.0, high=1.0, low_open=True),
        "steps": Field(int, 10, "steps", low=0),
        "full_batch": Field(bool, True, "full batch"),
        "tau": Field(float | None, None, "temperature", low=0.0, low_open=True),
        "tag": Field(str, "", "a label"),
        "names": Field(list[str], ["a"], "names"),
    },
}


def cfg(table=None, overrides=(), **kw):
    return build_config("demo", SCHEMA, table or {}, overrides, **kw)


def assert_one_line(err, *parts):
    msg = str(err)
    assert "\n" not in msg
    for p in parts:
        assert p in msg, (p, msg)
    return msg


# ------------------------------------------------------------------------------- values


def test_defaults_and_access():
    c = cfg()
    assert c.get("data.n") == 100 and c["data"]["n"] == 100 and c.data.n == 100
    assert c.get("train.tau") is None
    assert c.data.spectrum == (1.0, 0.5)  # lists are stored as tuples: immutable
    assert c.to_dict()["data"]["spectrum"] == [1.0, 0.5]
    assert set(c) == {"data", "train"} and c.get("nope.x", 3) == 3


def test_config_is_immutable():
    c = cfg()
    with pytest.raises(AttributeError):
        c.experiment = "x"
    with pytest.raises(AttributeError):
        c.train.lr = 0.1
    with pytest.raises(TypeError):
        c["train"]["lr"] = 0.1


@pytest.mark.parametrize("item, key, value", [
    ("data.n=7", "data.n", 7),
    ("data.n=1e3", "data.n", 1000),
    ("data.n=1_000", "data.n", 1000),
    ("data.noise=0", "data.noise", 0.0),
    ("data.noise=2.5e-3", "data.noise", 0.0025),
    ("train.full_batch=false", "train.full_batch", False),
    ("train.full_batch=Yes", "train.full_batch", True),
    ("train.full_batch=0", "train.full_batch", False),
    ("train.tau=none", "train.tau", None),
    ("train.tau=2", "train.tau", 2.0),
    ("train.tag='a b'", "train.tag", "a b"),
    ("train.tag=x=y", "train.tag", "x=y"),
    ("data.spectrum=3,2.5,1e-2", "data.spectrum", (3.0, 2.5, 0.01)),
    ("data.spectrum=[4, 1.5]", "data.spectrum", (4.0, 1.5)),
    ("data.dims=", "data.dims", ()),
    ("data.dims=[]", "data.dims", ()),
    ("data.dims=1,2", "data.dims", (1, 2)),
    ("train.names=x,y", "train.names", ("x", "y")),
    ("data.kind=axis", "data.kind", "axis"),
])
def test_overrides_parse_with_field_type(item, key, value):
    got = cfg(overrides=[item]).get(key)
    assert got == value and type(got) is type(value)


def test_table_values_are_coerced():
    c = cfg({"data": {"n": 5.0, "noise": 1}, "train": {"tau": "none", "lr": 1}})
    assert c.data.n == 5 and isinstance(c.data.n, int)
    assert c.data.noise == 1.0 and isinstance(c.data.noise, float)
    assert c.train.tau is None and c.train.lr == 1.0


def test_mapping_overrides_and_with_overrides():
    c = cfg()
    d = c.with_overrides(["train.lr=0.25"]).with_overrides({"data.spectrum": [2, 1]})
    assert d.train.lr == 0.25 and d.data.spectrum == (2.0, 1.0)
    assert c.train.lr == 0.5  # original untouched
    assert d != c and d == cfg(overrides=["train.lr=0.25", "data.spectrum=2,1"])


# ------------------------------------------------------------------------------- errors


@pytest.mark.parametrize("item, parts", [
    ("train.lrr=0.1", ["train.lrr", "0.1", "unknown key", "did you mean train.lr", "train.steps"]),
    ("trian.lr=0.1", ["trian.lr", "unknown section 'trian'", "did you mean 'train'", "sections data, train"]),
    ("train.lr=abc", ["train.lr = abc", "wrong type", "a number in (0.0, 1.0]"]),
    ("train.lr=0", ["train.lr = 0", "out of range", "(0.0, 1.0]"]),
    ("train.lr=1.5", ["train.lr = 1.5", "out of range"]),
    ("train.lr=nan", ["train.lr = nan", "not a finite number"]),
    ("data.n=0", ["data.n = 0", "out of range", "an integer >= 1"]),
    ("data.n=2.5", ["data.n = 2.5", "wrong type", "an integer"]),
    ("train.steps=-1", ["train.steps = -1", "out of range", ">= 0"]),
    ("train.full_batch=maybe", ["train.full_batch = maybe", "true or false"]),
    ("train.tau=0", ["train.tau = 0", "out of range", "> 0.0", "or none"]),
    ("data.kind=gaus", ["data.kind = gaus", "not one of the choices", "did you mean 'gauss'", "'gauss', 'axis'"]),
    ("data.spectrum=1,0", ["data.spectrum = 1,0", "out of range", "numbers > 0.0"]),
    ("data.spectrum=1,x", ["data.spectrum = 1,x", "wrong type"]),
    ("data.spectrum=[1,", ["data.spectrum = [1,", "not a valid TOML array"]),
    ("train.lr", ["--set = train.lr", "malformed override", "key=value"]),
    ("lr=0.1", ["--set = lr=0.1", "malformed override"]),
])
def test_bad_override_one_line(item, parts):
    with pytest.raises(ConfigError) as e:
        cfg(overrides=[item])
    assert_one_line(e.value, *parts)
    assert "allowed:" in str(e.value)


@pytest.mark.parametrize("table, parts", [
    ({"trainn": {"lr": 0.1}}, ["f.toml: [trainn]", "unknown section", "did you mean 'train'"]),
    ({"train": {"lr": "fast"}}, ["f.toml: train.lr = fast", "wrong type"]),
    ({"train": {"full_batch": 1}}, ["f.toml: train.full_batch = 1", "true or false"]),
    ({"train": {"steps": True}}, ["train.steps = True", "an integer"]),
    ({"data": {"spectrum": 1.0}}, ["data.spectrum = 1.0", "expected a list"]),
    ({"data": {"spectrum": [1.0, "a"]}}, ["data.spectrum", "wrong type"]),
    ({"seed": 3}, ["f.toml: seed = 3", "unknown key", "experiment, description, figure"]),
    ({"figure": "yes"}, ["f.toml: figure = yes", "true or false"]),
])
def test_bad_table_one_line(table, parts):
    with pytest.raises(ConfigError) as e:
        cfg(table, where="f.toml")
    assert_one_line(e.value, *parts)


def test_get_unknown_key_raises():
    with pytest.raises(ConfigError) as e:
        cfg().get("train.step")
    assert_one_line(e.value, "train.step", "did you mean train.steps")


def test_schema_type_checked_at_definition():
    with pytest.raises(InputError, match="Field: type"):
        Field(dict, {})
    with pytest.raises(InputError, match="Field: type"):
        Field(int | str, 1)
    with pytest.raises(ConfigError):  # a default out of its own range is a schema bug, caught early
        build_config("x", {"a": {"b": Field(int, 0, low=1)}}, {})


def test_describe():
    assert describe(Field(float, 1.0, low=0, high=1, low_open=True, high_open=True)) == "a number in (0, 1)"
    assert describe(Field(int, 1, high=5)) == "an integer <= 5"
    assert describe(Field(bool, True)) == "true or false"


def test_validate_runs_on_build_and_with_overrides():
    calls = []

    def validate(c):
        calls.append(c.train.lr)
        if c.train.lr > 0.8:
            raise ConfigError("train.lr", c.train.lr, "<= 0.8 for this spectrum", "beyond the stability limit")

    c = cfg(validate=validate)
    with pytest.raises(ConfigError, match="stability"):
        c.with_overrides(["train.lr=0.9"])
    unchecked = cfg(overrides=["train.lr=0.9"], validate=validate, check=False)
    with pytest.raises(ConfigError):
        unchecked.validate()
    assert calls == [0.5, 0.9, 0.9]


# ------------------------------------------------------------------------------ loading


def test_load_config_from_kind_preset_and_file(tmp_path, monkeypatch):
    monkeypatch.setenv("LINKD_PRESETS", str(tmp_path))
    (tmp_path / "fast_toy.toml").write_text(
        'experiment = "toy"\ndescription = "a toy preset"\n[train]\nsteps = 3\n')
    by_kind = load_config("kind:toy")
    assert by_kind.experiment == "toy" and by_kind.train.steps == 20 and by_kind.source == "toy"
    assert by_kind.origin == {"type": "experiment defaults", "name": "toy"}
    preset = load_config("fast_toy", ["run.seed=4"])
    assert preset.train.steps == 3 and preset.run.seed == 4 and preset.description == "a toy preset"
    assert preset.source == "fast_toy"
    digest = "sha256:" + hashlib.sha256((tmp_path / "fast_toy.toml").read_bytes()).hexdigest()
    assert preset.origin == {"type": "preset", "name": "fast_toy", "path": str(tmp_path / "fast_toy.toml"),
                             "location": "LINKD_PRESETS", "sha256": digest}
    path = tmp_path / "copy.toml"
    path.write_text(dump_toml(preset))
    assert load_config(path) == preset and load_config(str(path)).source == "copy"
    assert load_config(path).origin["type"] == "file" and load_config(path).digest() == preset.digest()
    assert preset.with_overrides(["train.lr=0.25"]).origin == preset.origin  # overrides keep the origin


def test_config_digest_covers_values_only():
    a = load_config("kind:toy")
    b = load_config("kind:toy", ["train.steps=21"])
    assert a.digest().startswith("sha256:") and len(a.digest()) == 7 + 64
    assert a.digest() != b.digest() and b.with_overrides(["train.steps=20"]).digest() == a.digest()


def test_a_kind_name_is_not_a_preset(tmp_path, monkeypatch):
    """A bare name is a preset or an error, never a silent run of the kind's built-in defaults
    (an installed linkd without presets used to do exactly that)."""
    monkeypatch.setenv("LINKD_PRESETS", str(tmp_path))
    with pytest.raises(ConfigError) as e:
        load_config("toy")
    assert_one_line(e.value, "EXPERIMENT = toy", "no preset of that name", "kind:toy")
    with pytest.raises(ConfigError) as e:
        load_config("kind:toyy")
    assert_one_line(e.value, "EXPERIMENT = kind:toyy", "unknown experiment kind")


@pytest.mark.parametrize("text", ["inf", "-inf", "nan", "1e400"])
def test_non_finite_floats_are_refused(text):
    with pytest.raises(ConfigError) as e:
        load_config("kind:toy", [f"data.noise={text}"])
    assert_one_line(e.value, f"data.noise = {text}", "not a finite number", "a number >= 0.0")
    with pytest.raises(ConfigError, match="not a finite number"):
        load_config("kind:toy", {"data.noise": float(text)})


def test_load_config_errors(tmp_path, monkeypatch):
    monkeypatch.setenv("LINKD_PRESETS", str(tmp_path))
    with pytest.raises(ConfigError) as e:
        load_config("toyy")
    assert_one_line(e.value, "EXPERIMENT = toyy", "unknown experiment", "did you mean toy", "path to a .toml")
    with pytest.raises(ConfigError) as e:
        load_config(tmp_path / "missing.toml")
    assert_one_line(e.value, "missing.toml", "no such file")
    bad = tmp_path / "bad.toml"
    bad.write_text("[train\nlr = 1")
    with pytest.raises(ConfigError) as e:
        read_toml(bad)
    assert_one_line(e.value, "bad.toml", "TOML syntax error")
    nokind = tmp_path / "nokind.toml"
    nokind.write_text("[train]\nlr = 0.1\n")
    with pytest.raises(ConfigError) as e:
        load_config(nokind)
    assert_one_line(e.value, "nokind.toml: experiment", "missing", "toy")
    other = tmp_path / "other.toml"
    other.write_text('experiment = "nonesuch"\n')
    with pytest.raises(ConfigError) as e:
        load_config(other)
    assert_one_line(e.value, "experiment = nonesuch", "unknown experiment kind", "toy")


# ---------------------------------------------------------------------------- round trip

_text = st.text(st.characters(exclude_categories=("Cs",)), max_size=20)
_float = st.floats(allow_nan=False, allow_infinity=False)  # non-finite values are refused
_pos = st.floats(min_value=0.0, exclude_min=True, allow_infinity=False)
_int = st.integers(min_value=-(2**63), max_value=2**63 - 1)

RT_SCHEMA = {
    "a": {
        "i": Field(int, 0), "f": Field(float, 0.0), "b": Field(bool, False), "s": Field(str, ""),
        "p": Field(float, 1.0, low=0.0, low_open=True), "on": Field(int | None, None),
    },
    "b-2": {
        "fl": Field(list[float], []), "il": Field(list[int], []), "sl": Field(list[str], []),
        "os": Field(str | None, None), "odd key": Field(float | None, None),
    },
}


@given(i=_int, f=_float, b=st.booleans(), s=_text, p=_pos, on=st.none() | _int,
       fl=st.lists(_float, max_size=5), il=st.lists(_int, max_size=5), sl=st.lists(_text, max_size=3),
       os_=st.none() | _text.filter(lambda t: t.strip().lower() not in ("none", "null")),
       ok=st.none() | _float, desc=_text)
def test_toml_round_trip(i, f, b, s, p, on, fl, il, sl, os_, ok, desc):
    table = {"a": {"i": i, "f": f, "b": b, "s": s, "p": p, "on": on},
             "b-2": {"fl": fl, "il": il, "sl": sl, "os": os_, "odd key": ok}}
    c = build_config("rt", RT_SCHEMA, {}, {f"{sec}.{k}": v for sec, d in table.items() for k, v in d.items()},
                     description=desc)
    text = dump_toml(c)
    parsed = tomllib.loads(text)
    back = build_config(parsed["experiment"], RT_SCHEMA, parsed)
    assert back == c
    assert back.description == desc
    for sec, d in c.items():  # floats exactly, including -0.0 and subnormals
        for k, v in d.items():
            w = back[sec][k]
            if isinstance(v, float):
                assert math.copysign(1, v) == math.copysign(1, w) and v == w


def test_nan_and_inf_are_refused_in_toml_too():
    for text in ("nan", "inf", "-inf"):
        with pytest.raises(ConfigError, match="a.f = .*not a finite number"):
            build_config("rt", RT_SCHEMA, tomllib.loads(f"[a]\nf = {text}\n"))


def test_dump_is_documented_toml():
    text = dump_toml(cfg(overrides=["train.tag=a \"quoted\"\tstring"], description="multi\nline"))
    assert text.splitlines()[1] == 'experiment = "demo"'
    assert "lr = 0.5  # step" in text
    assert tomllib.loads(text)["train"]["tag"] == 'a "quoted"\tstring'


def test_parse_override():
    assert parse_override("a.b= 1") == ("a.b", " 1")
    with pytest.raises(ConfigError):
        parse_override("ab=1")
    assert isinstance(cfg(), Config)
