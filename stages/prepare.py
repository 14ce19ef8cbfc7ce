"""Stage prepare: validate, de-duplicate, split and store resized images of ``data/raw/``."""

from _common import run


def main(params, argv):
    from artstyle import paths
    from artstyle.data.catalogue import prepare_dataset
    from artstyle.data.sample import sample_notice

    summary = prepare_dataset(
        paths.RAW, paths.PREPARED, paths.DATA_REPORT, image_size=params.base.image_size,
        seed=params.base.seed, params=params.prepare,
        dataset_notice=(sample_notice(params.data.classes) if params.data.source == "sample"
                        else ""))
    return (f"read {summary['files_scanned']} files, kept {summary['images']} images in "
            f"{summary['classes']} classes (split {summary['split']}), rejected "
            f"{summary['rejected']}, duplicates {summary['duplicates']}, label conflicts "
            f"{summary['label_conflicts']}; wrote {paths.PREPARED}, {paths.DATA_REPORT}")


if __name__ == "__main__":
    run("prepare", main)
