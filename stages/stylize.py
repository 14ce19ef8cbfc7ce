"""Stage stylize: Gatys and feed-forward style transfer over contents x styles, judged alike."""

from _common import run


def main(params, argv):
    from artstyle import paths
    from artstyle.nst.optimise import repeatable_threads
    from artstyle.stylize import run_stylize_stage

    repeatable_threads()  # the same params and seed give the same bytes
    table = run_stylize_stage(params)
    rates = table.groupby("engine")["style_hit"].mean().round(3).to_dict()
    return f"{len(table)} outputs, style-hit rate {rates}; wrote {paths.STYLIZED}, {paths.STYLIZE_REPORT}"


if __name__ == "__main__":
    run("stylize", main)
