"""Stage stylize: Gatys and feed-forward style transfer over contents x styles, judged alike."""

from _common import run


def main(params, argv):
    from artstyle.determinism import configure

    # Before TensorFlow starts: the same outputs on any x86-64 CPU (train.repeatable),
    # one inter-op thread included (the same params and seed give the same bytes).
    configure(params.train.repeatable, params.train.threads)
    from artstyle import paths
    from artstyle.stylize import run_stylize_stage

    table = run_stylize_stage(params)
    rates = table.groupby("engine")["style_hit"].mean().round(3).to_dict()
    return (f"{len(table)} outputs, style-hit rate {rates}; wrote {paths.STYLIZED}, "
            f"{paths.STYLIZE_REPORT}")


if __name__ == "__main__":
    run("stylize", main)
