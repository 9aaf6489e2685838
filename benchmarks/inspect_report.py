"""`egoforge inspect` on 1,000 samples of HD frames: thumbnail build time and how fast the report opens.

Build: egoforge's thumbnailer (JPEG draft-mode decode, threads) against the stock PIL path (full decode, resize,
one thread), per frame, and a rebuild that reuses the thumbnails. Open, in headless Chromium (Debian's package):
the report as built (50 samples per page, thumbnails) against all 1,000 cards on one page, and against all cards
showing the original 1280x720 frames (what a plain static page listing the data would do).

    python benchmarks/inspect_report.py [--samples 1000] [--clips 50]
"""

from __future__ import annotations

import argparse
import io
import json
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))
from _common import table, timeit  # noqa: E402

from egoforge.inspect import build_report  # noqa: E402
from egoforge.inspect.thumbnails import THUMB_BOX  # noqa: E402
from egoforge.testing.egocross_data import make_testbed  # noqa: E402

HD = (1280, 720)
FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic", "--window-size=1280,1000")


def make_hd_testbed(root: Path, clips: int, samples: int) -> Path:
    """A testbed of ``samples`` questions over ``clips`` clips of 8 HD frames (sensor noise for realistic sizes)."""
    testbed, _ = make_testbed(root, per_domain=max(1, clips // 4), frames=(8, 8), seed=11)
    rng = np.random.default_rng(0)
    for frame in (root / "testbed").rglob("*.*"):
        with Image.open(frame) as img:
            big = np.asarray(img.convert("RGB").resize(HD, Image.Resampling.BILINEAR), dtype=np.int16)
        noisy = np.clip(big + rng.normal(0, 6, big.shape), 0, 255).astype(np.uint8)
        buf = io.BytesIO()
        Image.fromarray(noisy).save(buf, format="PNG" if frame.suffix == ".png" else "JPEG", quality=90)
        frame.write_bytes(buf.getvalue())
    items = json.loads(testbed.read_text())
    big = [dict(items[i % len(items)], id=f"q{i:04d}", question_id=i) for i in range(samples)]
    path = root / "testbed_1000.json"
    path.write_text(json.dumps(big))
    return path


def stock_thumbnails(frames: list[Path], out: Path) -> None:
    """The straightforward way: decode each frame fully, resize, save; one thread."""
    out.mkdir(parents=True, exist_ok=True)
    for i, frame in enumerate(frames):
        with Image.open(frame) as img:
            rgb = img.convert("RGB")
        scale = min(THUMB_BOX[0] / rgb.width, THUMB_BOX[1] / rgb.height)
        rgb.resize((round(rgb.width * scale), round(rgb.height * scale)), Image.Resampling.BICUBIC).save(
            out / f"{i}.jpg", quality=80)


def open_metrics(driver, page: Path) -> dict:
    driver.get("about:blank")
    start = time.perf_counter()
    driver.get(page.as_uri())
    while driver.execute_script("return document.body && document.body.dataset.ready") != "1":
        time.sleep(0.01)
    wall = time.perf_counter() - start
    nav = driver.execute_script("const n = performance.getEntriesByType('navigation')[0];"
                                "return [n.domContentLoadedEventEnd, n.loadEventEnd, document.body.dataset.readyMs,"
                                " document.getElementsByTagName('*').length, performance.memory.usedJSHeapSize,"
                                " Array.from(document.images).filter(i => i.complete && i.naturalWidth).length]")
    turn = driver.execute_script("const t = performance.now(); const b = document.querySelector('.pager .next');"
                                 "if (!b.disabled) b.click(); return performance.now() - t;")
    return {"wall_ms": 1000 * wall, "dcl_ms": nav[0], "load_ms": nav[1], "ready_ms": float(nav[2]),
            "dom_nodes": nav[3], "heap_mb": nav[4] / 2**20, "images": nav[5], "turn_ms": turn}


def with_originals(report: Path, target: Path) -> Path:
    """A plain static page: every card at once, each thumbnail replaced by its original frame, loaded eagerly."""
    html = report.read_text(encoding="utf-8")
    match = re.search(r'(<script id="egoforge-data" type="application/json" nonce="[^"]+">)(.*?)(</script>)', html,
                      re.S)
    data = json.loads(match.group(2))
    for sample in data["samples"]:
        for frame in sample["frames"]:
            frame["src"] = frame["href"] or frame["src"]
    data["pageSize"] = 0
    escaped = json.dumps(data).replace("<", "\\u003c")
    html = html[: match.start(2)] + escaped + html[match.end(2):]
    target.write_text(html.replace('img.loading = "lazy";', 'img.loading = "eager";'), encoding="utf-8")
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--clips", type=int, default=48, help="distinct clips of 8 HD frames")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data = make_hd_testbed(tmp / "data", args.clips, args.samples)
        frames = sorted(p for p in (tmp / "data" / "testbed").rglob("*.*"))
        rows = []
        stock, _ = timeit(lambda: stock_thumbnails(frames, tmp / "stock"), repeat=1, warmup=0)
        rows.append(["stock PIL: full decode + resize, 1 thread", f"{1000 * stock / len(frames):.2f}", "1.00x"])

        def build(workers: int) -> float:
            shutil.rmtree(tmp / "r", ignore_errors=True)
            start = time.perf_counter()
            build_report(data, tmp / "r", workers=workers)
            return time.perf_counter() - start

        for workers in (1, 2):
            seconds = build(workers)
            rows.append([f"egoforge inspect (draft decode, {workers} thread{'s' * (workers > 1)}), whole report",
                         f"{1000 * seconds / len(frames):.2f}", f"{stock / seconds:.2f}x"])
        start = time.perf_counter()
        build_report(data, tmp / "r")
        again = time.perf_counter() - start
        rows.append(["egoforge inspect rebuild (thumbnails reused)", f"{1000 * again / len(frames):.2f}",
                     f"{stock / again:.2f}x"])
        print(f"{args.samples} samples over {len(frames)} distinct {HD[0]}x{HD[1]} frames; "
              f"report build includes reading the data and writing index.html")
        print(table(["thumbnails", "ms/frame", "speed-up"], rows))

        if not shutil.which("chromium") or not shutil.which("chromedriver"):
            print("\nopen times skipped: apt-get install -y chromium chromium-driver")
            return
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        all_on_one = tmp / "all"
        build_report(data, all_on_one, page_size=0)
        originals = with_originals(tmp / "r" / "index.html", tmp / "r" / "originals.html")
        pages = [("egoforge inspect: 50 per page, thumbnails", tmp / "r" / "index.html"),
                 ("all cards on one page, thumbnails", all_on_one / "index.html"),
                 ("plain page: all cards, original frames, eager", originals)]
        results = []
        for label, page in pages:
            options = webdriver.ChromeOptions()
            options.binary_location = shutil.which("chromium")
            for flag in (*FLAGS, f"--user-data-dir={tempfile.mkdtemp(dir=tmp)}"):
                options.add_argument(flag)
            driver = webdriver.Chrome(options=options, service=Service(shutil.which("chromedriver")))
            try:
                open_metrics(driver, page)  # warm the browser's own start-up out of the figure
                metrics = [open_metrics(driver, page) for _ in range(3)]
            finally:
                driver.quit()
            best = {k: sorted(m[k] for m in metrics)[1] for k in metrics[0]}  # median of 3
            results.append((label, best))
        base = results[0][1]
        print(f"\nopening the {args.samples}-sample report in headless Chromium (median of 3, warm browser)")
        print(table(["page", "ready ms", "load event ms", "x slower", "DOM nodes", "JS heap MB", "images decoded",
                     "page turn ms"],
                    [[label, f"{m['ready_ms']:.0f}", f"{m['load_ms']:.0f}", f"{m['load_ms'] / base['load_ms']:.1f}x",
                      m["dom_nodes"], f"{m['heap_mb']:.1f}", m["images"], f"{m['turn_ms']:.1f}"]
                     for label, m in results]))
        size = (tmp / "r" / "index.html").stat().st_size
        print(f"index.html: {size / 2**20:.2f} MiB; thumbnails: "
              f"{sum(p.stat().st_size for p in (tmp / 'r' / 'thumbs').iterdir()) / 2**20:.2f} MiB "
              f"vs originals {sum(p.stat().st_size for p in frames) / 2**20:.2f} MiB")


if __name__ == "__main__":
    main()
