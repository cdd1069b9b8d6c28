"""Training-free enhancement strategies: composable steps between a question and its prompt.

`--strategy` values, in the order given (recorded in spec.json and the run id):
    rag                 MMAD's way: all of the category's domain knowledge after the instruction
    rag=topk:K          only the K entries most similar (TF-IDF) to the question and its options
    agent=SOURCE:STYLE  an anomaly map drawn on a copy of the query, appended after it with a caveat;
                        SOURCE expert | oracle | maps:DIR, STYLE bbox | contour | highlight | mask
    circular            (MMBench) every question once per rotation of its options; right only if
                        right in every rotation. Rotation 0 is the question as written.
    cot                 a first turn asks the model to compare the query with the normal sample; its
                        answer stays in the conversation, then the question is asked
    sc=N:T              self-consistency: N answers at temperature T, majority vote (default 5:0.7)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness.errors import ConfigError

STYLES = ("bbox", "contour", "highlight", "mask")
# Every --strategy form, for the help text (kept beside the parser below).
STRATEGY_FORMS = ("rag", "rag=topk:K", "agent=expert|oracle|maps:DIR[:" + "|".join(STYLES) + "]", "circular", "cot", "sc=N:T")


@dataclass(frozen=True)
class RagSetting:
    top_k: int | None = None  # None: every entry of the category (MMAD's way)


@dataclass(frozen=True)
class AgentSetting:
    source: str  # expert | oracle | maps:DIR
    style: str = "bbox"


@dataclass(frozen=True)
class SelfConsistencySetting:
    samples: int = 5
    temperature: float = 0.7


@dataclass(frozen=True)
class Strategies:
    rag: RagSetting | None = None
    agent: AgentSetting | None = None
    circular: bool = False
    cot: bool = False
    sc: SelfConsistencySetting | None = None

    @property
    def names(self) -> list[str]:
        names = ["circular"] if self.circular else []
        if self.cot:
            names.append("cot")
        if self.sc:
            names.append(f"sc={self.sc.samples}:{self.sc.temperature:g}")
        if self.rag:
            names.append("rag" if self.rag.top_k is None else f"rag=topk:{self.rag.top_k}")
        if self.agent:
            names.append(f"agent={self.agent.source}:{self.agent.style}")
        return names


def parse_strategies(values: list[str]) -> Strategies:
    rag = agent = sc = None
    circular = cot = False
    for value in values:
        name, _, argument = value.partition("=")
        if name == "rag":
            if rag is not None:
                raise ConfigError("--strategy rag is given twice")
            if not argument:
                rag = RagSetting()
            elif argument.startswith("topk:") and argument[5:].isdigit() and int(argument[5:]) > 0:
                rag = RagSetting(int(argument[5:]))
            else:
                raise ConfigError(f"--strategy {value!r}: use rag or rag=topk:K")
        elif name == "agent":
            if agent is not None:
                raise ConfigError("--strategy agent is given twice")
            source, _, style = argument.rpartition(":") if argument.count(":") >= 1 and argument.rsplit(":", 1)[-1] in STYLES else (argument, "", "bbox")
            if not (source in ("expert", "oracle") or (source.startswith("maps:") and len(source) > 5)) or style not in STYLES:
                raise ConfigError(f"--strategy {value!r}: use agent=expert|oracle|maps:DIR[:bbox|contour|highlight|mask]")
            if source.startswith("maps:") and not Path(source[5:]).expanduser().is_dir():
                raise ConfigError(f"--strategy {value!r}: {source[5:]} is not a folder of anomaly maps; give the folder that holds one map per image")
            agent = AgentSetting(source, style or "bbox")
        elif name == "circular" and not argument:
            circular = True
        elif name == "cot" and not argument:
            cot = True
        elif name == "sc":
            count, _, temperature = (argument or "5:0.7").partition(":")
            try:
                sc = SelfConsistencySetting(int(count), float(temperature or 0.7))
            except ValueError:
                raise ConfigError(f"--strategy {value!r}: use sc or sc=N:T, like sc=5:0.7") from None
            if sc.samples < 2 or not 0 < sc.temperature <= 2:
                raise ConfigError(f"--strategy {value!r}: self-consistency needs N >= 2 samples and 0 < T <= 2")
        else:
            raise ConfigError(f"--strategy {value!r}: unknown; available: rag, rag=topk:K, agent=SOURCE[:STYLE], circular, cot, sc=N:T")
    return Strategies(rag, agent, circular, cot, sc)
