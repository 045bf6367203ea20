"""Texts of the end user's choosing that used to cost the Markdown renderer seconds (issue
18), shared by tests/site/test_hostile_markdown.py and bench/markdown.py so the test and the
figures in bench/RESULTS.md are about the same texts."""

# Issue 18's patterns as it writes them (N repeats), then what else was found costly: each "["
# looks ahead for its "]", each link destination for its ")", each line is a block.
PATTERNS = {
    '"[" * N': lambda n: "[" * n,
    '"![" * N': lambda n: "![" * n,
    '"* " * N': lambda n: "* " * n,
    '"> " * N (nested quotes)': lambda n: "> " * n,
    "quote lines": lambda n: "".join(">" * (i % 200) + " x\n" for i in range(n // 100)),
    '"*a" * N/2': lambda n: "*a" * (n // 2),
    '"[a](" * N/4': lambda n: "[a](" * (n // 4),
    '"<" * N': lambda n: "<" * n,
    '"- a\\n" * N/4 (list items)': lambda n: "- a\n" * (n // 4),
    '"x|y\\n" * N/4 (table rows)': lambda n: "a|b\n-|-\n" + "x|y\n" * (n // 4),
    '"[" * 3 + "*a" * N/2': lambda n: "[" * 3 + "*a" * (n // 2),
}

# The costliest texts the default budgets (FLYWHEEL_MARKDOWN_*) still render, before padding
# to 10,000 characters.
AT_THE_BUDGETS = {
    '"*a" * 1,490': "*a" * 1_490,
    '"[" * 3 + "*a" * 1,490': "[" * 3 + "*a" * 1_490,
    '"![" + "*a" * 1,490': "![" + "*a" * 1_490,
    '"_a " * 2,990': "_a " * 2_990,
    '"&a " * 2,990': "&a " * 2_990,
    '"<" * 2,990': "<" * 2_990,
    '"[a](" * 10, destinations open to the end': "[a](" * 10,
    '"- a\\n" * 500': "- a\n" * 500,
    '"x|y\\n" * 498': "a|b\n-|-\n" + "x|y\n" * 498,
    '"> a\\n" * 500': "> a\n" * 500,
}
