"""Mutation run: plant one deliberate bug at a time and check that `linkd check --fast` (then the
test suite) kills it. Not part of the default test suite.

    .venv/bin/python -m benchmarks.mutation                 # every mutant (~15-40 min on 2 cores)
    .venv/bin/python -m benchmarks.mutation --only loss.binary_soft_ce_tau metric.kl_swapped
    .venv/bin/python -m benchmarks.mutation --list          # the mutant table
    .venv/bin/python -m benchmarks.mutation --no-tests      # stop after the claim registry

Each mutant is a small textual edit (a literal string, or a regular expression for the engine
files, so a mutant survives small refactors of the surrounding code) applied to a COPY of the tree (``git ls-files`` tracked and
untracked-not-ignored files, copied to a temporary directory; the working tree is never edited).
The copy is run with ``PYTHONPATH`` pointing at it, in three stages, stopping at the first kill:

1. ``python -m proofs_check.runner --fast -x --only <hint claims>``: the claims that target the
   mutant (a failure here is a failure of the full ``linkd check --fast``: claims are independent);
2. ``python -m pytest -x -q <relevant test files>``;
3. ``python -m proofs_check.runner --fast -x``: the whole registry, stopping at the first failure
   (last because it is the slowest stage; ``--no-full-check`` skips it).

A mutant whose pattern no longer matches (the code moved) is reported "not applicable", not a
failure. Results: ``benchmarks/mutation_results.json`` and ``benchmarks/mutation_results.md``
(per mutant: stage that killed it, seconds; and the kill rate).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT_JSON = ROOT / "benchmarks" / "mutation_results.json"
OUT_MD = ROOT / "benchmarks" / "mutation_results.md"


@dataclasses.dataclass(frozen=True)
class Mutant:
    """One planted bug: in ``path`` replace the ``occurrence``-th match of ``old`` by ``new``
    (``regex``: ``old`` is a regular expression and ``new`` a replacement template)."""

    id: str
    area: str  # closed form / bound / loss / metric / spectral / sampler / engine
    path: str
    old: str
    new: str
    what: str
    claims: tuple = ()  # claims expected to kill it (run first)
    tests: tuple = ()  # test files run if the registry lets it through
    regex: bool = False
    occurrence: int = 1


M = Mutant
MUTANTS = (
    # ------------------------------------------------------------------ closed forms
    M("cf.exaggeration_gap_sign", "closed form", "linkd/closed_form/gd.py", "_pairwise_gap(a + b - a * b,",
      "_pairwise_gap(a + b + a * b,", "exaggeration_gap residual a+b+ab instead of a+b-ab",
      ("ng.exaggeration_gap_formula",), ("tests/test_closed_form_gd.py",)),
    M("cf.teacher_student_T_plus_1", "closed form", "linkd/closed_form/gd.py",
      "1.0 - _gd(lam, eta, T))", "1.0 - _gd(lam, eta, T + 1))",
      "teacher filter one step off in teacher_student_filters", ("ng.student_filter",), ("tests/test_closed_form_gd.py",)),
    M("cf.switch_off_by_one", "closed form", "linkd/closed_form/gd.py", "jnp.maximum(t - t0, 0)",
      "jnp.maximum(t - t0 - 1, 0)", "late-distillation decay counted from t0+1", ("ng.switch_closed_form",),
      ("tests/test_closed_form_gd.py",)),
    M("cf.gd_decay_sign", "closed form", "linkd/closed_form/decay.py", "odd = whole & (xp.mod(t, 2.0) == 1.0)",
      "odd = whole & (xp.mod(t, 2.0) == 0.0)", "sign of (1 - eta lambda)^t wrong for eta lambda > 1", ("ng.teacher_filter",),
      ("tests/test_closed_form_gd.py",)),
    M("cf.self_distill_predict_round", "closed form", "linkd/closed_form/self_distill.py",
      "coef = inv * (result.y[:-1] @ V)", "coef = inv * (result.y[1:] @ V)",
      "self-distillation prediction of round t uses y_t instead of y_{t-1}", ("mb.predict_rounds",),
      ("tests/test_self_distill.py",)),
    M("cf.pl_limit_orthogonal", "closed form", "linkd/closed_form/phuong_lampert.py", "return P @ w_star + (w0 - P @ w0)",
      "return P @ w_star + 0.5 * (w0 - P @ w0)", "PL limit keeps half of the orthogonal part of w0",
      ("pl.limit_underdetermined",), ("tests/test_closed_form_pl.py",)),
    # ------------------------------------------------------------------ bounds
    M("bound.pl_exponent_looser", "bound", "linkd/bounds.py", "pc[None, :] ** nf[:, None]",
      "pc[None, :] ** (nf[:, None] - 1.0)", "PL bound exponent n-1 (a looser bound)", ("pl.bound_closed_form",),
      ("tests/test_bounds.py",)),
    M("bound.mc_standard_error", "bound", "linkd/bounds.py", "jnp.std(risks, ddof=1) / math.sqrt(n_sets)",
      "jnp.std(risks, ddof=1) / n_sets", "Monte Carlo SE divided by n_sets instead of sqrt(n_sets)",
      ("pl.mc_standard_error",), ("tests/test_bounds.py",)),
    M("bound.geometry_risk_dim", "bound", "linkd/bounds.py", "betainc(0.5 * (d - 2), 0.5,", "betainc(0.5 * (d - 1), 0.5,",
      "exact geometry risk with the sphere dimension off by one", ("pl.geometry_exact_risk",),
      ("tests/test_experiments_theory.py",)),
    M("bound.iso_beta_params", "bound", "linkd/bounds.py", "a, b = 0.5 * n, 0.5 * (d - n)",
      "a, b = 0.5 * (n + 1), 0.5 * (d - n)", "isotropic expected risk with Beta(n/2+1/2, .)",
      ("pl.isotropic_exact_risk",), ("tests/test_bounds.py",)),
    # ------------------------------------------------------------------ losses
    M("loss.binary_soft_ce_tau", "loss", "linkd/losses.py", "return jax.nn.softplus(u) - p * u",
      "return jax.nn.softplus(u) - p * z", "binary_soft_ce drops 1/tau on the p*z term",
      ("ng.kd_gradient_temperature",), ("tests/test_losses_spectral.py",)),
    M("loss.kd_binary_tau_not_tau2", "loss", "linkd/losses.py", "return loss * tau * tau if tau2_scale else loss",
      "return loss * tau if tau2_scale else loss", "kd_binary multiplies by tau instead of tau^2",
      ("ng.kd_gradient_temperature",), ("tests/test_losses_spectral.py",), occurrence=1),
    M("loss.kd_softmax_tau_not_tau2", "loss", "linkd/losses.py", "return loss * tau * tau if tau2_scale else loss",
      "return loss * tau if tau2_scale else loss", "kd_softmax multiplies by tau instead of tau^2",
      ("ng.kd_gradient_temperature",), ("tests/test_losses_spectral.py",), occurrence=2),
    M("loss.softmax_ce_tau", "loss", "linkd/losses.py", "jax.nn.log_softmax(z / tau, axis=-1)",
      "jax.nn.log_softmax(z, axis=-1)", "softmax_ce ignores the student temperature",
      ("ng.kd_gradient_temperature",), ("tests/test_losses_spectral.py",)),
    M("loss.switch_step_late", "loss", "linkd/losses.py", "jnp.where(step < switch_step, 1.0, alpha)",
      "jnp.where(step <= switch_step, 1.0, alpha)", "late-distillation switch one step late",
      ("ng.switch_closed_form",), ("tests/test_losses_spectral.py",)),
    # ------------------------------------------------------------------ metrics / spectral
    M("metric.kl_swapped", "metric", "linkd/metrics.py", "jnp.sum(rel_entr(a, b), axis=-1)",
      "jnp.sum(rel_entr(b, a), axis=-1)", "predictive KL in the swapped direction", ("st.fidelity_metrics",),
      ("tests/test_metrics.py",)),
    M("metric.tie_rule", "metric", "linkd/metrics.py", "return (a > thr).astype(jnp.int32)",
      "return (a >= thr).astype(jnp.int32)", "binary tie (z = 0, p = 1/2) goes to class 1", ("st.fidelity_metrics",),
      ("tests/test_metrics.py",)),
    M("metric.ols_wrong_way", "metric", "linkd/metrics.py",
      "jnp.sum(xc * yc) / jnp.where(sxx > 0, sxx, 1.0)", "jnp.sum(xc * yc) / jnp.sum(yc * yc)",
      "confidence slope fitted as x on y (wrong way round)", (), ("tests/test_metrics.py",)),
    M("spectral.progress_abs", "spectral", "linkd/spectral.py", "return jnp.where(c_star == 0, 0.0, c / safe)",
      "return jnp.where(c_star == 0, 0.0, c / jnp.abs(safe))", "progress defined as c/|c*|",
      ("ng.exaggeration_gap_formula",), ("tests/test_losses_spectral.py",)),
    # ------------------------------------------------------------------ samplers
    M("data.margin_cone_swap", "sampler", "linkd/data/geometries.py", "a, b = jnp.cos(psi), jnp.sin(psi)",
      "a, b = jnp.sin(psi), jnp.cos(psi)", "margin cone: psi measured from the boundary instead of w*",
      ("pl.geometry_exact_risk",), ("tests/test_data.py",)),
    M("data.power_law_exponent", "sampler", "linkd/data/geometries.py", "theta = (math.pi / 2) * t ** (1.0 / param)",
      "theta = (math.pi / 2) * t ** param", "power-law angles with exponent beta instead of 1/beta",
      ("pl.geometry_exact_risk",), ("tests/test_data.py",)),
    M("data.gaussian_design_variance", "sampler", "linkd/data/designs.py", "* jnp.sqrt(lam)[None, :]", "* lam[None, :]",
      "Gaussian design scaled by lambda instead of sqrt(lambda)", (), ("tests/test_data.py",)),
    M("data.isotropic_p_dim", "sampler", "linkd/data/geometries.py", "betainc(0.5, (d - 1) / 2.0, s2)",
      "betainc(0.5, (d - 2) / 2.0, s2)", "isotropic p(theta) with the wrong dimension", ("pl.geometry_p_samples",),
      ("tests/test_data.py", "tests/test_bounds.py")),
    # ------------------------------------------------------------------ engine (regex: robust to small refactors)
    M("engine.kd_binary_tau2_ignored", "engine", "linkd/engine/objective.py", r"kd_binary\(z, z_t, tau, tau2_scale\)",
      "kd_binary(z, z_t, tau, False)", "engine ignores tau2_scale for the binary KD loss",
      ("ng.kd_gradient_temperature",), ("tests/test_dynamics.py",), regex=True),
    M("engine.mixture_swapped", "engine", "linkd/engine/objective.py",
      r"mixture\(((?:\w+\.)?_?hard_loss\(spec\.family, z, labels\)), kd, a\)", r"mixture(kd, \1, a)",
      "engine weights KD by alpha and the hard loss by 1-alpha", ("ng.switch_closed_form",),
      ("tests/test_dynamics.py",), regex=True),
    M("engine.gd_step_scaled", "engine", "linkd/engine/plain.py",
      r"params = optax\.apply_updates\(params, updates\)",
      "params = optax.apply_updates(params, jax.tree_util.tree_map(lambda u: 0.999 * u, updates))",
      "engine GD step 0.1% short", ("dl.gd_scalar_recursion",), ("tests/test_dynamics.py",), regex=True),
    M("engine.hard_labels_flipped", "engine", "linkd/engine/objective.py",
      r"binary_soft_ce\(z, labels\.astype\(z\.dtype\)\)", "binary_soft_ce(z, 1.0 - labels.astype(z.dtype))",
      "engine's binary hard-label loss uses flipped labels", ("ng.kd_gradient_temperature",),
      ("tests/test_dynamics.py",), regex=True),
    M("engine.eigen_step_scaled", "engine", "linkd/engine/eigen.py", r"c = optax\.apply_updates\(c, upd\)",
      "c = optax.apply_updates(c, jax.tree_util.tree_map(lambda u: 0.999 * u, upd))",
      "eigenbasis engine's GD step 0.1% short", ("ng.engine_paths",), ("tests/test_engines.py",), regex=True),
    M("engine.gram_step_scaled", "engine", "linkd/engine/gram.py", r"w = optax\.apply_updates\(w, upd\)",
      "w = optax.apply_updates(w, jax.tree_util.tree_map(lambda u: 0.999 * u, upd))",
      "Gram (sufficient-statistics) engine's GD step 0.1% short", ("ng.engine_paths",), ("tests/test_engines.py",), regex=True),
)


# ------------------------------------------------------------------------------------ copy + apply


def _files() -> list[str]:
    out = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, capture_output=True,
                         check=True).stdout.decode()
    return [f for f in out.split("\0") if f and (ROOT / f).is_file()]


def copy_tree(dest: Path) -> None:
    for f in _files():
        d = dest / f
        d.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / f, d)


def mutate(text: str, m: Mutant) -> str | None:
    """The mutated text, or None if the pattern does not occur ``occurrence`` times."""
    pat = m.old if m.regex else re.escape(m.old)
    hits = list(re.finditer(pat, text))
    if len(hits) < m.occurrence:
        return None
    h = hits[m.occurrence - 1]
    rep = h.expand(m.new) if m.regex else m.new
    return text[:h.start()] + rep + text[h.end():]


# ------------------------------------------------------------------------------------ stages


def _run(cmd: list[str], cwd: Path, timeout: float) -> tuple[int, float, str]:
    env = dict(os.environ, PYTHONPATH=str(cwd), MPLBACKEND="Agg", JAX_PLATFORMS=os.environ.get("JAX_PLATFORMS", "cpu"))
    t0 = time.perf_counter()
    try:
        p = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
        rc, out = p.returncode, (p.stdout + p.stderr)
    except subprocess.TimeoutExpired as e:
        rc, out = 124, f"timeout after {timeout} s: {e}"
    return rc, time.perf_counter() - t0, out


def _last_line(out: str) -> str:
    lines = [x for x in out.strip().splitlines() if x.strip()]
    return lines[-1][:300] if lines else ""


def _pytest_detail(out: str) -> str:
    """The first FAILED/ERROR line of a pytest run (the test that killed the mutant) and the summary."""
    bad = [x.strip() for x in out.splitlines() if x.startswith(("FAILED ", "ERROR "))]
    return "; ".join(bad[:1] + [_last_line(out)])[:300]


def _failed_claims(path: Path) -> str:
    """'id' (or 'id [crashed: ...]') of each failed gating claim in a runner --json file."""
    try:
        recs = json.loads(path.read_text())
    except (OSError, ValueError):
        return ""
    bad = [r for r in recs if r["kind"] != "qualitative" and not r["passed"]]
    return ", ".join(r["id"] + (f" [crashed: {r['note'][:160]}]" if str(r.get("note", "")).startswith("error:") else "")
                     for r in bad)


def _stages(m: Mutant, dest: Path, *, python: str, tests: bool, timeout: float, full_check: bool = True) -> dict:
    """Run the kill stages in ``dest``; {"status": "killed", "stage", "detail"} at the first kill, else {}."""
    js = dest / "_mutation_claims.json"
    runner = [python, "-m", "proofs_check.runner", "--fast", "-x", "--quiet", "--json", str(js)]
    stages = []
    if m.claims:
        stages.append(("claims (targeted)", [*runner, "--only", *m.claims]))
    if tests and m.tests:
        stages.append(("pytest", [python, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *m.tests]))
    if full_check:
        stages.append(("linkd check --fast", runner))
    seconds = 0.0
    for name, cmd in stages:
        js.unlink(missing_ok=True)
        rc, sec, out = _run(cmd, dest, timeout)
        seconds += sec
        if rc == 0 or (name == "pytest" and rc == 5):  # 5: no tests collected
            continue
        detail = _pytest_detail(out) if name == "pytest" else (f"failed: {_failed_claims(js)}" if rc == 1 else "")
        return {"status": "killed", "stage": name, "seconds": seconds, "detail": detail or f"exit {rc}: {_last_line(out)}",
                "crash": "crashed" in detail or rc not in (0, 1)}
    return {"seconds": seconds}


def run_mutant(m: Mutant, *, python: str, tests: bool, timeout: float, full_check: bool = True) -> dict:
    rec = {"id": m.id, "area": m.area, "path": m.path, "what": m.what, "status": None, "stage": None, "seconds": 0.0,
           "detail": ""}
    src = (ROOT / m.path).read_text()
    new = src if m.id == "baseline" else mutate(src, m)
    if new is None:
        rec.update(status="not applicable", detail=f"pattern not found: {m.old!r}")
        return rec
    with tempfile.TemporaryDirectory(prefix=f"linkd-mut-{m.id}-") as tmp:
        dest = Path(tmp)
        copy_tree(dest)
        (dest / m.path).write_text(new)
        rc, _, out = _run([python, "-c", "import linkd, proofs_check; print(linkd.__file__, proofs_check.__file__)"],
                          dest, 120)
        if rc != 0 or any(not Path(f).resolve().is_relative_to(dest.resolve()) for f in out.split()[-2:]):
            rec.update(status="error", detail=f"the copy is not what gets imported: {_last_line(out)}")
            return rec
        rec.update(_stages(m, dest, python=python, tests=tests, timeout=timeout, full_check=full_check))
        if rec["status"] is not None:
            return rec
        rec.update(status="survived", detail="every stage passed" + ("" if full_check else " (full registry not run)"))
    return rec


# ------------------------------------------------------------------------------------ report


def summary(results: list[dict]) -> dict:
    applicable = [r for r in results if r["status"] in ("killed", "survived")]
    killed = [r for r in applicable if r["status"] == "killed"]
    by_check = [r for r in killed if r["stage"] != "pytest"]  # a lower bound: tests run before the full registry
    return {"mutants": len(results), "applicable": len(applicable), "killed": len(killed),
            "killed_by_linkd_check": len(by_check), "survived": [r["id"] for r in applicable if r["status"] == "survived"],
            "not_applicable": [r["id"] for r in results if r["status"] == "not applicable"],
            "errors": [r["id"] for r in results if r["status"] == "error"],
            "kill_rate": (len(killed) / len(applicable)) if applicable else None,
            "check_kill_rate": (len(by_check) / len(applicable)) if applicable else None}


def markdown(results: list[dict], s: dict, command: str) -> str:
    rate = "n/a" if s["kill_rate"] is None else f"{100 * s['kill_rate']:.0f}%"
    crate = "n/a" if s["check_kill_rate"] is None else f"{100 * s['check_kill_rate']:.0f}%"
    lines = [f"# Mutation run ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})", "",
             f"Command: `{command}`", "",
             f"{s['killed']}/{s['applicable']} applicable mutants killed ({rate}); the claim registry killed "
             f"{s['killed_by_linkd_check']} ({crate}; a lower bound, the full registry runs after the tests); not applicable: {len(s['not_applicable'])}.", "",
             "| mutant | area | bug | result | killed by | detail | seconds |", "|---|---|---|---|---|---|---|"]
    for r in results:
        detail = str(r.get("detail", "")).replace("|", "\\|")[:160]
        lines.append(f"| `{r['id']}` | {r['area']} | {r['what']} | {r['status']} | {r['stage'] or '-'} | {detail} | "
                     f"{r['seconds']:.0f} |")
    return "\n".join(lines) + "\n"


def _interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.mutation", description=__doc__.split("\n\n")[0])
    p.add_argument("--only", nargs="+", default=[], metavar="ID", help="run only these mutants")
    p.add_argument("--list", action="store_true", help="print the mutant table and exit")
    p.add_argument("--no-tests", action="store_true", help="do not run pytest on survivors of the registry")
    p.add_argument("--no-full-check", action="store_true",
                   help="skip the whole-registry stage (only targeted claims and tests)")
    p.add_argument("--timeout", type=float, default=900.0, help="seconds per stage")
    p.add_argument("--python", default=sys.executable, help="interpreter with linkd's dependencies")
    p.add_argument("--baseline", action="store_true",
                   help="first run the stages on an unmutated copy (must pass: otherwise every kill is suspect)")
    p.add_argument("--out", default=None, help="write results to OUT.json / OUT.md instead of benchmarks/mutation_results.*")
    args = p.parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)  # subprocess.run kills the running stage on the way out
    ids = {m.id for m in MUTANTS}
    unknown = [i for i in args.only if i not in ids]
    if unknown:
        print(f"unknown mutant id(s): {', '.join(unknown)}; see --list", file=sys.stderr)
        return 2
    todo = [m for m in MUTANTS if not args.only or m.id in args.only]
    if args.list:
        for m in MUTANTS:
            applicable = mutate((ROOT / m.path).read_text(), m) is not None
            print(f"{m.id:34s} {m.area:12s} {'ok ' if applicable else 'N/A'} {m.what}")
        return 0
    results = []
    if args.baseline:
        base = Mutant("baseline", "-", "linkd/__init__.py", "", "", "no mutation (control)",
                      tuple(sorted({c for m in todo for c in m.claims})), tuple(sorted({t for m in todo for t in m.tests})))
        rec = run_mutant(base, python=args.python, tests=not args.no_tests, timeout=args.timeout,
                         full_check=not args.no_full_check)
        print(f"[baseline] {rec['status']}: {rec['detail']} ({rec['seconds']:.0f} s)", flush=True)
        if rec["status"] != "survived":
            print("the unmutated tree fails its own checks: fix that first", file=sys.stderr)
            return 2
    for i, m in enumerate(todo):
        rec = run_mutant(m, python=args.python, tests=not args.no_tests, timeout=args.timeout,
                         full_check=not args.no_full_check)
        results.append(rec)
        print(f"[{i + 1}/{len(todo)}] {m.id}: {rec['status']}" + (f" by {rec['stage']}" if rec["stage"] else "")
              + f" ({rec['seconds']:.0f} s)", flush=True)
    s = summary(results)
    command = "python -m benchmarks.mutation " + " ".join(argv if argv is not None else sys.argv[1:])
    js, md = (Path(args.out + ".json"), Path(args.out + ".md")) if args.out else (OUT_JSON, OUT_MD)
    from linkd.atomic import atomic_write_text

    atomic_write_text(js, json.dumps({"command": command.strip(), "summary": s, "results": results}, indent=1) + "\n")
    atomic_write_text(md, markdown(results, s, command.strip()))
    print(f"killed {s['killed']}/{s['applicable']} applicable; survived: {s['survived'] or 'none'}; "
          f"not applicable: {s['not_applicable'] or 'none'}")
    return 0 if not s["survived"] and not s["errors"] else 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
