#!/usr/bin/env bash
# Renames the top-level `collectors` package to `cachetop.collectors` (issue 16 section 3): PyPI
# already has an unrelated `collectors`, and installed, ours was a top-level package beside it.
#
# Moves the folder (collectors/ -> cachetop/collectors/) with git mv, then rewrites every
# reference: imports, dotted module names in strings and docs (`"collectors.redis_info:..."`,
# import-linter contracts, the mypy override), folder paths in docs, bench, Makefile and
# .ci/run, and the packaging in pyproject.toml.
#
# Idempotent: run it again after merging work that still says `collectors` (a new module or a
# new import), and it moves and rewrites only what is left. It never touches tests/collectors/
# (the tests' own package) or attributes and variables named `collectors`.
#
# Why a move and not a package-dir mapping that leaves the folder in place: mypy and
# import-linter find modules by their path, not through the editable install's import hook;
# with a mapping they would read collectors/ as `collectors` while the code imports
# `cachetop.collectors`, and strict typing and the contracts would silently see nothing.
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"

# 1. The folder. After a merge, files another branch added to collectors/ may sit there still
#    (git usually follows the directory rename itself): move whatever is left, file by file.
if [ -d collectors ]; then
  if [ ! -e cachetop/collectors ]; then
    git mv collectors cachetop/collectors
  else
    git ls-files -z collectors | while IFS= read -r -d '' file; do
      mkdir -p "cachetop/$(dirname "$file")"
      git mv "$file" "cachetop/$file"
    done
  fi
  # Left behind by the file-by-file move: bytecode, and whatever git does not track (kept).
  if [ -d collectors ]; then
    find collectors -name __pycache__ -type d -prune -exec rm -rf {} +
    find collectors -depth -type d -empty -delete
    [ ! -e collectors ] || echo "rename_collectors: untracked files left in collectors/" >&2
  fi
fi

# 2. pyproject.toml: the package list and import-linter's root packages name cachetop alone
#    now (these two lines first: the generic rewrite below would otherwise double them).
perl -0pi -e '
  s/^include = \["cachetop\*", "collectors\*"\]$/include = ["cachetop*"]/m;
  s/^root_packages = \["cachetop", "collectors"\]$/root_packages = ["cachetop"]/m;
' pyproject.toml

# 3. .ci/run and the Makefile: ruff's folders (cachetop/ holds the collectors now) and mypy's.
perl -pi -e '
  s/^(\s*\S*ruff check cachetop) collectors /$1 /;
  s/(mypy --strict) collectors /$1 cachetop\/collectors /;
' .ci/run Makefile

# 4. Every text file git tracks there: module names, then folder paths.
#    - a dotted name starting `collectors.` (imports, strings, docs, "collectors.*"), unless it
#      follows a word, a dot or a slash (self.collectors.x, tests.collectors.x, tests/collectors/);
#    - `import collectors` alone becomes `from cachetop import collectors` (same bound name);
#    - `from collectors import` and quoted or backquoted `collectors` (contracts, prose);
#    - the folder `collectors/` in docs and the `ROOT / "collectors"` paths in bench.
#    ARCHITECTURE.md is left alone: written after the move, its paths are relative to cachetop/.
git grep -lzI collectors -- '*.py' '*.toml' '*.md' Makefile .ci/run bench scripts tests \
      ':!scripts/rename_collectors.sh' ':!tests/fixtures' ':!ARCHITECTURE.md' \
  | xargs -0 --no-run-if-empty perl -pi -e '
      s/(?<![\w.\/])collectors(?=\.[\w*])/cachetop.collectors/g;
      s/^(\s*)import collectors$/$1from cachetop import collectors/;
      s/(?<![\w.])from collectors import /from cachetop.collectors import /g;
      s/(?<=["`])(?<!\/ ")collectors(?=["`])/cachetop.collectors/g;
      s/(?<![\w.\/])collectors\//cachetop\/collectors\//g;
      s/ROOT \/ "collectors"/ROOT \/ "cachetop" \/ "collectors"/g;
    '

# 5. Imports are sorted by module name: `cachetop.collectors` now sorts among cachetop's.
if [ -x .venv/bin/ruff ]; then
  .venv/bin/ruff check --fix --select I --quiet cachetop tests bench scripts || true
fi
# 6. Longer names can push a docstring past the line limit; those lines are wrapped by hand.
if [ -x .venv/bin/ruff ]; then
  .venv/bin/ruff check --select E501 --output-format concise cachetop tests bench scripts >&2 || true
fi
echo "rename_collectors: done; review with git diff, then make setup (pyproject.toml changed)" >&2
