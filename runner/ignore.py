"""Which files of a code folder travel: `.gitignore` and `.trainrigignore` rules (nested ones too),
and never `.git/` or bytecode caches."""

import os

import pathspec

ALWAYS = [".git/", ".hg/", ".svn/", "__pycache__/", "*.pyc", ".trainrig/", ".DS_Store"]
RULE_FILES = (".gitignore", ".trainrigignore")


class IgnoreRules:
    def __init__(self, root: str):
        self.root = root
        self._specs: dict[str, pathspec.GitIgnoreSpec | None] = {}
        self._always = pathspec.GitIgnoreSpec.from_lines(ALWAYS)

    def _spec(self, rel_dir: str) -> "pathspec.GitIgnoreSpec | None":
        if rel_dir not in self._specs:
            lines: list[str] = []
            for name in RULE_FILES:
                path = os.path.join(self.root, rel_dir, name)
                if os.path.isfile(path):
                    with open(path, encoding="utf-8", errors="replace") as f:
                        lines.extend(f.read().splitlines())
            self._specs[rel_dir] = pathspec.GitIgnoreSpec.from_lines(lines) if lines else None
        return self._specs[rel_dir]

    def skip(self, rel: str, is_dir: bool) -> bool:
        """True when `rel` (a '/'-separated path under the root) must not be sent."""
        probe = rel + "/" if is_dir else rel
        if self._always.match_file(probe):
            return True
        verdict = None
        parts = rel.split("/")
        # Rules in deeper folders override those above them, as in git.
        for depth in range(len(parts)):
            spec = self._spec("/".join(parts[:depth]))
            if spec is None:
                continue
            sub = "/".join(parts[depth:]) + ("/" if is_dir else "")
            result = spec.check_file(sub)
            if result.include is not None:
                verdict = result.include
        return bool(verdict)
