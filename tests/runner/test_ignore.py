from runner.ignore import IgnoreRules
from runner.remote import wire


def test_gitignore_trainrigignore_nested_and_git_folder(tmp_path):
    files = {
        ".gitignore": "*.log\nbuild/\n!keep.log\n",
        ".trainrigignore": "data/\n",
        "train.py": "", "keep.log": "", "x.log": "", "build/a.o": "", "data/big.bin": "",
        ".git/HEAD": "", "pkg/__pycache__/m.pyc": "", "pkg/m.py": "",
        "pkg/.gitignore": "secret.txt\n!x.log\n", "pkg/secret.txt": "", "pkg/x.log": "",
    }
    for name, text in files.items():
        p = tmp_path / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    sent = {e.path for e in wire.scan(str(tmp_path), IgnoreRules(str(tmp_path)).skip)}
    assert sent == {".gitignore", ".trainrigignore", "train.py", "keep.log", "pkg/m.py", "pkg/.gitignore", "pkg/x.log"}
