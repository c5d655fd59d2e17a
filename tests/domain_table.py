"""docs/domains.md, generated from the claim registry: the domain (hypotheses) of every claim.

    .venv/bin/python tests/domain_table.py          # rewrite docs/domains.md
    .venv/bin/python tests/domain_table.py --check  # exit 1 if docs/domains.md differs from the registry

One table per paper: each claim stated over a domain, its parameters with type and range, the
constraints between them and the default point (where ``linkd check --at`` starts and what the
fixed ``--fast`` run reproduces as closely as it can). tests/test_claim_domains.py checks that the
page equals what this script writes.
"""
from __future__ import annotations

import sys
from pathlib import Path

__all__ = ["DOMAINS_MD", "REGENERATE", "render", "main"]

DOMAINS_MD = Path(__file__).resolve().parents[1] / "docs" / "domains.md"
REGENERATE = ".venv/bin/python tests/domain_table.py"

HEADER = """# Claim domains

Every exact, bound and monotone claim of `linkd check` is stated over a **domain**: the hypotheses
of its theorem, as named parameters with types and ranges and constraints between them. `linkd
check --only ID --at NAME=V,...` evaluates a claim at one point of it, `linkd check --domain K` at
the worst of K quasi-random points (scrambled Sobol, `scipy.stats.qmc`) and `make check-domain`
screens the whole registry ([Claims](claims.md#claims-over-their-domains)). The fixed `--fast` run
of each claim is unchanged; the default point below is where `--at` starts.

Types: `int` integers in [lo, hi] (`log`: screened evenly in ln x), `real` reals, `log-real` positive
reals screened evenly in ln x, `choice` one of the listed values. This page is generated from the
registry (`{regen}`); a test fails when it is out of date.
"""


def _param(name: str, d: dict) -> str:
    if d["type"] == "choice":
        return f"`{name}` ∈ {{{', '.join(map(str, d['options']))}}}"
    log = " log" if d.get("log") else ""
    return f"`{name}` {d['type']}{log} [{d['lo']:g}, {d['hi']:g}]"


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "∣")


def render() -> str:
    """The whole page, from the registry."""
    import jax

    jax.config.update("jax_enable_x64", True)
    from linkd.claims.domain import format_point
    from proofs_check import registry

    out = [HEADER.format(regen=REGENERATE)]
    claims = [c for c in registry.all_claims() if c.domain is not None]
    for paper in dict.fromkeys(c.paper for c in claims):
        out.append(f"\n## {paper}\n\n| claim | kind | parameters | constraints | default point |\n"
                   "| --- | --- | --- | --- | --- |")
        for c in (c for c in claims if c.paper == paper):
            desc = c.domain.describe()
            params = "; ".join(_param(n, d) for n, d in desc["params"].items())
            where = "; ".join(f"`{_cell(w)}`" for w in desc["where"]) or "none"
            out.append(f"| `{c.id}` | {c.kind} | {_cell(params)} | {where} | `{format_point(c.domain.default())}` |")
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    text = render()
    if "--check" in argv:
        same = DOMAINS_MD.exists() and DOMAINS_MD.read_text() == text
        if not same:
            print(f"docs/domains.md is out of date: run {REGENERATE}", file=sys.stderr)
        return 0 if same else 1
    DOMAINS_MD.write_text(text)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    sys.exit(main())
