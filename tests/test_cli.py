"""`python -m spacy_dtn`: the command list a newcomer sees first."""
import importlib

from spacy_dtn.__main__ import COMMANDS, main


def test_help_lists_every_command_with_what_it_does(capsys):
    assert main(["--help"]) == 0
    listed = capsys.readouterr().out
    for name, (module, summary) in COMMANDS.items():
        assert f"  {name}" in listed and summary in listed
        assert callable(importlib.import_module(module, "spacy_dtn").main)


def test_an_unknown_or_missing_command_is_named_and_fails(capsys):
    assert main(["anotate"]) == 2
    assert "unknown command 'anotate'" in capsys.readouterr().err
    assert main([]) == 2
    assert "commands:" in capsys.readouterr().err
