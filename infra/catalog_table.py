"""The plain-text table of `trainrig accelerators` (split from infra/catalog.py): one line per machine,
with its hosts (a TPU pod slice's VMs; 1 otherwise), then where the prices come from."""

from __future__ import annotations

from typing import TYPE_CHECKING

from infra.catalog_places import listing, usd
from infra.errors import BadInput

if TYPE_CHECKING:
    from infra.catalog import Catalog

HEADER = ("CLOUD", "ACCELERATOR", "KIND", "MEMORY", "COUNT", "HOSTS", "MACHINE TYPE", "ON-DEMAND $/H", "SPOT $/H",
          "WHERE")


def format_table(catalog: Catalog, cloud: str | None = None) -> str:
    from infra.catalog import CLOUDS

    if cloud is not None and cloud not in CLOUDS:
        raise BadInput(f"the cloud {cloud!r} is not known: choose one of {listing(CLOUDS)}.")
    lines: list[tuple[str, ...]] = [HEADER]
    for e in catalog.entries(cloud):
        places = e.zones if e.cloud == "gcp" else e.regions
        unit = "zone" if e.cloud == "gcp" else "region"
        shown = ", ".join(places[:3]) + (", ..." if len(places) > 3 else "")
        where = f"{len(places)} {unit}{'s' if len(places) != 1 else ''}: {shown}"
        for i, m in enumerate(e.machines):
            first = i == 0
            lines.append((
                e.cloud if first else "",
                e.name if first else "",
                e.kind if first else "",
                f"{e.memory_gb} GB" if first else "",
                str(m.count),
                str(m.hosts),
                m.machine_type + (f" + {e.gcp_accelerator_type}" if e.gcp_accelerator_type else ""),
                usd(m.on_demand_usd_h),
                usd(m.spot_usd_h),
                where if first else "",
            ))
    widths = [max(len(row[i]) for row in lines) for i in range(len(HEADER))]
    out = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in lines]
    for c in CLOUDS if cloud is None else (cloud,):
        rows = catalog.entries(c)
        if not rows:
            continue
        sources = sorted({e.price_source for e in rows})
        dates = sorted({e.price_date for e in rows})
        regions = sorted({e.price_region for e in rows})
        out.append(
            f"{c} prices: USD/h per whole machine (a TPU slice: all its hosts), list prices in {', '.join(regions)} "
            f"from {', '.join(sources)} as of {dates[0] if len(dates) == 1 else dates[0] + '..' + dates[-1]}; not "
            "fetched live, check before relying on them; spot figures are estimates (- = none known)."
        )
    return "\n".join(out)
