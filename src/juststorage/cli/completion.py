"""`juststorage completion bash|zsh|fish`: the shell's completion script, from click.

The script asks the `juststorage` program itself for completions (click's
`_JUSTSTORAGE_COMPLETE` protocol), so it stays right as commands change.
"""

from __future__ import annotations

import click
from click.shell_completion import get_completion_class

_COMPLETE_VAR = "_JUSTSTORAGE_COMPLETE"


@click.command()
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
@click.pass_context
def completion(ctx: click.Context, shell: str) -> None:
    """Print the completion script for SHELL.

    \b
    bash:  eval "$(juststorage completion bash)"   (in ~/.bashrc)
    zsh:   eval "$(juststorage completion zsh)"    (in ~/.zshrc)
    fish:  juststorage completion fish > ~/.config/fish/completions/juststorage.fish
    """
    root = ctx.find_root()
    completer = get_completion_class(shell)
    assert completer is not None  # the three choices are click's own
    script = completer(root.command, {}, root.info_name or "juststorage", _COMPLETE_VAR)
    click.echo(script.source())
