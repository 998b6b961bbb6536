"""The documentation site: a strict mkdocs build, its OpenAPI reference from the app, a README that is a front door."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cryptopredict.serving import create_app
from tests.helpers import GOLDEN, ROOT

MKDOCS = str(Path(sys.executable).parent / "mkdocs")


def _build(config: Path, site: Path) -> subprocess.CompletedProcess[str]:
    """`mkdocs build --strict` of `config` into `site`, as `make docs` runs it."""
    return subprocess.run(
        [MKDOCS, "build", "--strict", "--config-file", str(config), "--site-dir", str(site)],
        cwd=config.parent, env={"NO_MKDOCS_2_WARNING": "1", "PATH": str(Path(sys.executable).parent)},
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site built from the checkout's docs/ and mkdocs.yml."""
    out = tmp_path_factory.mktemp("site")
    proc = _build(ROOT / "mkdocs.yml", out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


def test_the_reference_is_the_document_the_app_serves(site: Path) -> None:
    """The site's openapi.json is byte for byte GET /openapi.json of an app serving the golden artifact, and the
    reference page loads it with the Swagger UI the package vendors."""
    served = create_app({"artifact_dir": str(GOLDEN), "live_prices": "off"}).test_client().get("/openapi.json")
    assert (site / "openapi.json").read_bytes() == served.get_data()
    assert json.loads(served.get_data())["openapi"] == "3.1.0"
    page = (site / "reference" / "index.html").read_text()
    assert 'data-spec-url="../openapi.json"' in page
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css", "docs.js"):
        assert f"../swagger-ui/{asset}" in page
        vendored = (
            ROOT / "cryptopredict" / "serving" / "static" / ("docs.js" if asset == "docs.js" else f"swagger-ui/{asset}")
        )
        assert (site / "swagger-ui" / asset).read_bytes() == vendored.read_bytes()


def test_every_page_has_a_place_in_the_nav_by_reader(site: Path) -> None:
    """Each Markdown file in docs/ is built, the nav groups the pages by reader, and no page asks a font service."""
    config = (ROOT / "mkdocs.yml").read_text()
    for page in sorted((ROOT / "docs").glob("*.md")):
        assert f": {page.name}\n" in config, page.name
        built = site / "index.html" if page.stem == "index" else site / page.stem / "index.html"
        assert built.exists(), page.name
        assert "fonts.googleapis" not in built.read_text(), page.name
    for reader in ("Using the API", "Deploying your fork", "The model and its evidence", "Operating", "Development",
                   "Architecture"):  # fmt: skip
        assert f"  - {reader}:" in config, reader


@pytest.mark.parametrize(
    ("page", "says"),
    [
        ("[a link](nowhere.md)\n", "'nowhere.md', but the target is not found"),
        ("[an anchor](api.md#no-such-section)\n", "does not contain an anchor '#no-such-section'"),
        (None, 'not included in the "nav"'),
    ],
    ids=["broken-link", "unknown-anchor", "orphan-page"],
)
def test_a_broken_link_an_unknown_anchor_or_an_orphan_page_fails_the_build(
    tmp_path: Path, page: str | None, says: str
) -> None:
    """A copy of the docs with one defect: the strict build fails and names it."""
    shutil.copytree(ROOT / "docs", tmp_path / "docs")
    config = (
        (ROOT / "mkdocs.yml").read_text().replace("scripts/mkdocs_hooks.py", str(ROOT / "scripts" / "mkdocs_hooks.py"))
    )
    if page is None:
        (tmp_path / "docs" / "extra.md").write_text("# Nobody links here\n")
    else:
        (tmp_path / "docs" / "index.md").write_text((ROOT / "docs" / "index.md").read_text() + "\n" + page)
    (tmp_path / "mkdocs.yml").write_text(config)
    proc = _build(tmp_path / "mkdocs.yml", tmp_path / "site")
    assert proc.returncode != 0
    assert says in proc.stderr, proc.stderr[-2000:]
    assert proc.stderr.count("WARNING -") == 1, proc.stderr[-2000:]  # the copy is clean but for the defect


def test_the_readme_is_a_short_front_door_whose_links_resolve() -> None:
    """At most 200 lines, the two commands, and every relative link names a file in the checkout."""
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 200
    assert "make run " in readme
    assert "make test " in readme
    links = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", readme)
    local = [link for link in links if not link.startswith(("http://", "https://"))]
    assert len(local) >= 10
    for link in local:
        assert (ROOT / link).exists(), link


def test_the_sites_home_page_is_the_readme() -> None:
    """docs/index.md is the README but for its links, made relative to docs/, and the two sentences that
    name the repository's files: edit both together."""
    readme = (ROOT / "README.md").read_text().replace("](docs/", "](")
    home = (ROOT / "docs" / "index.md").read_text()
    differ = {line for line in set(readme.splitlines()) ^ set(home.splitlines())}
    assert differ == {
        "The site in `docs/` (built with `make docs`, published to GitHub Pages from `main` by the",
        "workflow) is organised by reader:",
        "This site (the repository's `docs/`, built with `make docs`, published to GitHub Pages from `main`",
        "by the workflow) is organised by reader:",
        "MIT: see [LICENSE](LICENSE).",
        "MIT: see `LICENSE` in the repository.",
    }
    assert len(readme.splitlines()) == len(home.splitlines())
