"""Stage download: materialise ``data/raw/`` from ``data.source`` (sample, Pandora 7K/18K, folder)."""

from _common import run


def main(params, argv):
    import logging

    from artstyle import paths

    data = params.data
    if data.source == "sample":
        from artstyle.data.sample import generate_sample

        counts = generate_sample(paths.RAW, images_per_class=data.sample.images_per_class,
                                 imbalance=data.sample.imbalance, side=data.sample.side,
                                 seed=params.base.seed, classes=data.classes)
        return f"generated synthetic sample: {len(counts)} classes, {sum(counts.values())} images"
    from artstyle.data.download import fetch_raw, repository_root, resolve_data_path

    path = None
    if data.path is not None:
        # Relative to the repository root, also inside `dvc exp run --temp` / queue copies.
        path = resolve_data_path(data.path)
        logging.getLogger("artstyle.stages.download").info(
            "data.path %r resolved to %s (repository root %s)", data.path, path,
            repository_root())
    summary = fetch_raw(data.source, paths.RAW, url=data.url, path=path, sha256=data.sha256,
                        classes=data.classes, cache_dir=paths.DOWNLOADS, retries=data.retries,
                        timeout=data.timeout_s)
    if path is not None:
        summary["data_path"] = data.path
        summary["data_path_resolved"] = str(path)
    return f"{data.source}: wrote {paths.RAW} ({summary})"


if __name__ == "__main__":
    run("download", main)
