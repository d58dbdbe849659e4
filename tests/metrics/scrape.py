"""Reading a ``/metrics`` scrape the way Prometheus does: parsed text, samples looked up by name and labels."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample


@dataclass(frozen=True)
class Scrape:
    """One scrape's families and samples."""

    text: str
    types: dict[str, str]
    samples: list[Sample]

    @classmethod
    def parse(cls, text: str) -> Scrape:
        """Parse Prometheus text; a malformed exposition fails the test here."""
        families = list(text_string_to_metric_families(text))
        return cls(
            text=text,
            types={family.name: family.type for family in families},
            samples=[sample for family in families for sample in family.samples],
        )

    def value(self, name: str, **labels: str) -> float | None:
        """The value of the sample ``name`` whose labels include ``labels`` (None when there is none)."""
        for sample in self.samples:
            if sample.name == name and all(sample.labels.get(key) == value for key, value in labels.items()):
                return sample.value
        return None

    def label_values(self, name: str, label: str) -> set[str]:
        """Every value ``label`` takes among the samples of ``name``."""
        return {sample.labels[label] for sample in self.samples if sample.name == name and label in sample.labels}


async def scrape(client: httpx.AsyncClient) -> Scrape:
    """GET /metrics with the client's token and parse it."""
    response = await client.get("/metrics")
    assert response.status_code == 200, response.text
    return Scrape.parse(response.text)
