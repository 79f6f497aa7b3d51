"""benchmarks/RESULTS.md and its plots from results/quality.json and speed.json."""
import statistics
from pathlib import Path
from typing import Dict, Iterable, List, Tuple

import srsly

from spacy_dtn.figures import saved_figure
from spacy_dtn.runs import config_digest
from spacy_dtn.tables import markdown_table

from .grid import BUDGET, system_config

# The systems of the per-fraction comparison, in the order the targets name them.
MAIN_SYSTEMS = ["dtn_sequential", "dtn_joint", "spacy_ner_transfer", "baseline", "spacy_ner_target", "dtn_trf"]
DPI = 90


def shown_system(record: Dict) -> str:
    """A record's system as the tables name it: runs with static vectors are a
    system of their own (`baseline+model2vec`), never averaged with the runs without."""
    return record["system"] + (f"+{record['vectors']}" if record.get("vectors") else "")


def summarize(records: Iterable[Dict]) -> List[Dict]:
    """Mean and standard deviation over seeds per (pair, fraction, system)."""
    groups: Dict[tuple, List[Dict]] = {}
    for r in records:
        groups.setdefault((r["pair"], r["fraction"], shown_system(r)), []).append(r)
    rows = []
    for (pair, fraction, system), runs in sorted(groups.items()):
        f1s = [r["test_f1"] for r in runs]
        labels = sorted({label for r in runs for label in r.get("test_per_type", {})})
        rows.append({
            "pair": pair, "fraction": fraction, "system": system, "seeds": len(runs),
            "test_f1": statistics.mean(f1s), "test_f1_std": statistics.stdev(f1s) if len(f1s) > 1 else 0.0,
            "dev_f1": statistics.mean(r["dev_f1"] for r in runs),
            "train_seconds": statistics.mean(r["train_seconds"] for r in runs),
            # Steps trained and the best dev step (records of the 600-step rule have neither).
            "steps": mean_or_none(r.get("steps") for r in runs),
            "best_step": mean_or_none(r.get("best_step") for r in runs),
            "threads": sorted({r.get("threads", "?") for r in runs}, key=str),
            "per_type": {label: statistics.mean(r["test_per_type"].get(label, 0.0) for r in runs) for label in labels},
        })
    return rows


def mean_or_none(values: Iterable) -> object:
    known = [v for v in values if v is not None]
    return statistics.mean(known) if known else None


def by_setting(rows: List[Dict]) -> Dict[Tuple[str, float], List[Dict]]:
    """The summary rows of each (pair, fraction), in order."""
    settings: Dict[Tuple[str, float], List[Dict]] = {}
    for r in sorted(rows, key=lambda r: (r["pair"], r["fraction"])):
        settings.setdefault((r["pair"], r["fraction"]), []).append(r)
    return settings


def targets_table(rows: List[Dict]) -> List[str]:
    """The issue's targets per setting: DTN sequential against the baseline, spaCy's
    source->target ner and the fixed scheme with the best dev F1 (chosen as a user would)."""
    lines = ["", "## Targets", "",
             "Differences in mean test F1 (points), DTN sequential minus the other system; "
             "targets: ≥ +3 over our baseline, ≥ +2 over spaCy `ner` source→target (5% to 25%), "
             "≥ −0.5 against the fixed scheme with the best mean dev F1; with full data (100%) DTN itself "
             "≥ 85.6 on NCBI-disease and ≥ 83.3 on BioNLP13PC (published single-task BiLSTM-CRF taggers).", ""]
    table = []
    for (pair, fraction), setting in by_setting(rows).items():
        group = {r["system"]: r for r in setting}
        dtn = group.get("dtn_sequential")
        if dtn is None:
            continue
        diff = lambda system: f"{100 * (dtn['test_f1'] - group[system]['test_f1']):+.2f}" if system in group else "–"
        schemes = [r for name, r in group.items() if name.startswith("scheme:")]
        best = max(schemes, key=lambda r: r["dev_f1"]) if schemes else None
        # Until every scheme of the setting is trained, "best" is the best of those run so far.
        scheme = (f"{100 * (dtn['test_f1'] - best['test_f1']):+.2f} ({best['system'][7:]}, "
                  f"of {len(schemes)} run)" if best else "–")
        table.append([pair, f"{fraction:.0%}", dtn["seeds"], f"{100 * dtn['test_f1']:.2f}", diff("baseline"),
                      diff("spacy_ner_transfer"), scheme])
    headers = ["pair", "fraction", "seeds", "DTN", "− baseline", "− spaCy ner transfer", "− best scheme by dev (which)"]
    return lines + markdown_table(headers, table)


def overview_tables(rows: List[Dict]) -> List[str]:
    """Mean test F1 of the main systems by target fraction, one table per pair."""
    lines = []
    for pair in sorted({r["pair"] for r in rows}):
        group = {(r["fraction"], r["system"]): r for r in rows if r["pair"] == pair}
        systems = [s for s in MAIN_SYSTEMS if any(system == s for _, system in group)]
        table = [[f"{fraction:.0%}", *(mean_std(group[fraction, s]) if (fraction, s) in group else "–" for s in systems)]
                 for fraction in sorted({f for f, _ in group})]
        lines += ["", f"### {pair}: test F1 by target fraction", ""] + markdown_table(["fraction", *systems], table)
    return lines


def mean_std(row: Dict) -> str:
    return f"{100 * row['test_f1']:.2f} ± {100 * row['test_f1_std']:.2f}"


def per_type_tables(rows: List[Dict]) -> List[str]:
    """Test F1 per entity type for the main systems, where a target has more than one type."""
    lines = []
    for (pair, fraction), setting in by_setting(rows).items():
        group = [r for r in setting if r["system"] in MAIN_SYSTEMS]
        labels = sorted({label for r in group for label in r["per_type"]})
        if len(labels) < 2:
            continue
        group.sort(key=lambda r: MAIN_SYSTEMS.index(r["system"]))
        table = [[r["system"], *(f"{100 * r['per_type'].get(label, 0.0):.2f}" for label in labels)] for r in group]
        lines += ["", f"### Per type: {pair}, target {fraction:.0%}", ""] + markdown_table(["system", *labels], table)
    return lines


def quality_tables(rows: List[Dict]) -> List[str]:
    lines = []
    for (pair, fraction), setting in by_setting(rows).items():
        group = sorted(setting, key=lambda r: -r["test_f1"])
        table = [[r["system"], r["seeds"], mean_std(r), f"{100 * r['dev_f1']:.2f}", steps(r["steps"]),
                  steps(r["best_step"]), f"{r['train_seconds']:,.0f}", ", ".join(map(str, r["threads"]))] for r in group]
        headers = ["system", "seeds", "test F1 (mean ± std)", "dev F1", "steps", "best step", "train s", "threads"]
        lines += ["", f"### {pair}, target {fraction:.0%}", ""] + markdown_table(headers, table)
    return lines


def steps(value: object) -> str:
    return "–" if value is None else f"{value:,.0f}"


def speed_table(speed: List[Dict]) -> List[str]:
    """One row per system of benchmarks/speed.py (older records lack the CPU and ratio fields: "—")."""
    def cell(record: Dict, key: str, spec: str) -> str:
        value = record.get(key)
        return "—" if value is None else format(value, spec)

    columns = [
        ("inference words/s", "infer_words_per_s", ",.0f"),
        ("inference words/CPU-s", "infer_cpu_words_per_s", ",.0f"),
        ("inference ÷ spaCy ner", "infer_cpu_words_per_s_vs_spacy_ner_target", ".2f"),
        ("n_process=2 words/s", "infer_words_per_s_n_process_2", ",.0f"),
        ("n_process=2 speed-up", "n_process_2_speedup", ".2f"),
        ("training words/CPU-s", "train_cpu_words_per_s", ",.0f"),
        ("training ÷ spaCy ner", "train_cpu_words_per_s_vs_spacy_ner_target", ".2f"),
        ("peak RSS serving (MB)", "peak_rss_mb", ".0f"),
        ("model on disk (MB)", "model_mb", ".1f"),
        ("test F1", "test_f1", ".4f"),
    ]
    table = [[r["system"]] + [cell(r, key, spec) for _, key, spec in columns] for r in speed]
    lines = ["", "## Speed and size", ""] + markdown_table(["system"] + [name for name, _, _ in columns], table)
    # Rows may come from several runs (a system remeasured after a change): ratios are within a run.
    runs: Dict[str, List[Dict]] = {}
    for r in speed:
        if r.get("run"):
            runs.setdefault(r["run"]["started"], []).append(r)
    for started, records in runs.items():
        run = records[0]["run"]
        systems = ", ".join(r["system"] for r in records)
        cpu = f"{run['cpu']} ({', '.join(run['cpu_features'])}), " if run.get("cpu_features") else ""
        lines += ["", f"{systems}: `{run['command']}` (started {started}, {cpu}OMP_NUM_THREADS={run['omp_num_threads']}, "
                  f"CPUs {run['cpu_affinity']}, median of {run['rounds']} rounds, load average {run['load_average_start']} at the start)."]
    return lines


def plot(rows: List[Dict], output: Path) -> List[Path]:
    """A bar chart of test F1 per setting, and F1 by fraction per pair where a system has several fractions."""
    written = []
    for (pair, fraction), setting in by_setting(rows).items():
        group = sorted(setting, key=lambda r: r["test_f1"])
        written.append(output / f"f1_{pair.replace('->', '_to_')}_{fraction}.png")
        with saved_figure(written[-1], (8, 0.3 * len(group) + 1.2), DPI) as ax:
            ax.barh([r["system"] for r in group], [100 * r["test_f1"] for r in group],
                    xerr=[100 * r["test_f1_std"] for r in group], color="tab:blue")
            ax.set_xlabel("test entity F1 (%)")
            ax.set_title(f"{pair}, target {fraction:.0%}")
    for pair in sorted({r["pair"] for r in rows}):
        curves = {system: sorted((r for r in rows if r["pair"] == pair and r["system"] == system),
                                 key=lambda r: r["fraction"]) for system in MAIN_SYSTEMS}
        curves = {system: curve for system, curve in curves.items() if len(curve) > 1}
        if not curves:
            continue
        written.append(output / f"f1_by_fraction_{pair.replace('->', '_to_')}.png")
        with saved_figure(written[-1], (6, 4), DPI) as ax:
            for system, curve in curves.items():
                ax.errorbar([100 * r["fraction"] for r in curve], [100 * r["test_f1"] for r in curve],
                            yerr=[100 * r["test_f1_std"] for r in curve], marker="o", capsize=3, label=system)
            ax.set_xscale("log")
            ax.set_xlabel("target training sentences (%)")
            ax.set_ylabel("test entity F1 (%)")
            ax.set_title(pair)
            ax.legend(fontsize=8)
    return written


def latest(records: List[Dict]) -> List[Dict]:
    """One record per run (the file appends: a run done again keeps its later
    record), and of the current budget rule only the runs of each system's
    current config file (a `config` digest in its key): a run not yet done
    again since its config changed drops out rather than enter a mean or
    stand for its system (a cell's `seeds` then says how many are left).
    An earlier rule's records are history and are kept as they are."""
    runs = {(r["pair"], r["fraction"], r["system"], r["seed"], r.get("budget"), r.get("vectors")): r for r in records}
    current = {system: config_digest(system_config(system)) for system in {r["system"] for r in runs.values()}}
    return [r for r in runs.values() if r.get("budget") != BUDGET or r.get("config") == current[r["system"]]]


def write_results(results: Path, markdown: Path) -> None:
    """RESULTS.md: the records of the current budget rule in full (grid.BUDGET),
    then, apart, the overview of an earlier rule's records (600 steps each)."""
    records = latest(srsly.read_json(results / "quality.json"))
    rows = summarize(r for r in records if r.get("budget") == BUDGET)
    earlier = summarize(r for r in records if r.get("budget") != BUDGET)
    speed_path = results / "speed.json"
    speed = srsly.read_json(speed_path) if speed_path.exists() else []
    images = plot(rows, results)
    for stale in set(results.glob("f1_*.png")) - set(images):  # settings no longer in the current rule's rows
        stale.unlink()
    lines = ["# Benchmark results", "",
             "Test-set entity F1 (%) on the target, mean ± standard deviation over seeds; each model is the "
             f"checkpoint with the best dev F1 under one budget rule for every system (`{BUDGET}`: "
             "benchmarks/grid.py); steps and best step are means over seeds; train s is the wall time of `spacy train` "
             "(evaluations included) with `threads` torch/BLAS threads. Regenerate with "
             "`python -m benchmarks.run` (`--quick` for one pair, one seed, 10%)."]
    lines += targets_table(rows)
    lines += ["", "## Quality"] + overview_tables(rows) + quality_tables(rows) + per_type_tables(rows)
    if earlier:
        lines += ["", "## Earlier rule: 600 training steps for every system",
                  "", "Not converged for spaCy's target-only `ner` and the full-data runs; kept for comparison."]
        lines += targets_table(earlier) + overview_tables(earlier)
    if speed:
        lines += speed_table(speed)
    lines += [""] + [f"![{p.stem}](results/{p.name})" for p in images]
    markdown.write_text("\n".join(lines) + "\n", encoding="utf8")
    print(f"Wrote {markdown}")
