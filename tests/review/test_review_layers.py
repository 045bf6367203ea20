"""The review app's layers, checked on its import graph (grimp, the library
behind import-linter): reads and display never reach for writes, and review
never imports training, which is downstream of it."""

import grimp
import pytest


@pytest.fixture(scope="module")
def graph():
    return grimp.build_graph("review", "training", "curation")


@pytest.mark.parametrize(
    "module", ["review.selectors", "review.stats", "review.presenters", "review.forms"]
)
def test_reads_and_display_do_not_import_services(graph, module):
    assert "review.services" not in graph.find_modules_directly_imported_by(module)
    assert not graph.chain_exists(importer=module, imported="review.services")


def test_review_does_not_import_training(graph):
    assert not graph.chain_exists(importer="review", imported="training", as_packages=True)
