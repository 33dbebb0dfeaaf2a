//! What runbook gives an operator's shell: completion scripts and the manual page, both generated
//! from the clap definitions in `cli`, so neither can drift from what the parser accepts.

use std::io::Write;

use clap::CommandFactory;
use roff::{Roff, bold, italic, roman};

use crate::cli::Arguments;
use crate::error::{Error, Result, exit};

/// `runbook completions SHELL`: the script on stdout.
pub fn completions(shell: clap_complete::Shell) -> Result<u8> {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Arguments::command(), "runbook", &mut script);
    let script = String::from_utf8_lossy(&script).into_owned();
    let script = match shell {
        clap_complete::Shell::Bash => format!("{script}{BASH_DYNAMIC}"),
        clap_complete::Shell::Zsh => zsh_with_dynamic(&script)?,
        clap_complete::Shell::Fish => format!("{}{}{FISH_DYNAMIC}", fish_profiles(&script), fish_runbook_names()),
        _ => script,
    };
    print(script.as_bytes())
}

/// What only the binary knows (a runbook's parameters and their values after `run NAME`, the
/// profiles after `--cluster`) comes from `runbook __complete`; clap's function does the rest.
const BASH_DYNAMIC: &str = r#"
# Asked of the binary: a runbook's parameters and their declared values, and the profiles.
_runbook_dynamic() {
    local cur="${COMP_WORDS[COMP_CWORD]}" prev="${COMP_WORDS[COMP_CWORD-1]}" words
    if [[ "$prev" == "--cluster" || "$prev" == "-c" ]]; then
        words=$("${COMP_WORDS[0]}" __complete profiles 2>/dev/null | cut -f1)
        if [[ -n "$words" ]]; then
            COMPREPLY=($(compgen -W "$words" -- "$cur"))
            return 0
        fi
    fi
    if [[ "${COMP_WORDS[1]}" == "run" ]]; then
        local typed=("${COMP_WORDS[@]:2:COMP_CWORD-2}")
        words=$("${COMP_WORDS[0]}" __complete value "${typed[@]}" 2>/dev/null)
        if [[ -n "$words" ]]; then
            COMPREPLY=($(compgen -W "$words" -- "$cur"))
            return 0
        fi
        _runbook "$@"
        if [[ "$cur" == -* ]]; then
            words=$("${COMP_WORDS[0]}" __complete params "${typed[@]}" 2>/dev/null | cut -f1)
            COMPREPLY+=($(compgen -W "$words" -- "$cur"))
        fi
        return 0
    fi
    _runbook "$@"
}

if [[ "${BASH_VERSINFO[0]}" -eq 4 && "${BASH_VERSINFO[1]}" -ge 4 || "${BASH_VERSINFO[0]}" -gt 4 ]]; then
    complete -F _runbook_dynamic -o nosort -o bashdefault -o default runbook
else
    complete -F _runbook_dynamic -o bashdefault -o default runbook
fi
"#;

/// zsh calls the function named like its file (`_runbook`) on every completion, so clap's
/// function is renamed and `_runbook` asks the binary first.
const ZSH_DYNAMIC: &str = r#"
# Asked of the binary: a runbook's parameters and their declared values, and the profiles.
_runbook() {
    local -a found
    if [[ ${words[CURRENT-1]} == (--cluster|-c) ]]; then
        found=(${(f)"$(${words[1]} __complete profiles 2>/dev/null)"})
        found=(${${found//:/\\:}//$'\t'/:})
        if (( $#found )); then
            _describe -t profiles 'cluster profile' found
            return
        fi
    fi
    if [[ ${words[2]} == run ]]; then
        found=(${(f)"$(${words[1]} __complete value ${words[3,CURRENT-1]} 2>/dev/null)"})
        if (( $#found )); then
            compadd -a found
            return
        fi
        if [[ $PREFIX == -* ]]; then
            found=(${(f)"$(${words[1]} __complete params ${words[3,CURRENT-1]} 2>/dev/null)"})
            found=(${${found//:/\\:}//$'\t'/:})
            (( $#found )) && _describe -t parameters 'runbook parameter' found
        fi
    fi
    _runbook_clap "$@"
}

"#;

/// Where clap's zsh script dispatches, which must stay last.
const ZSH_DISPATCH: &str = r#"if [ "$funcstack[1]" = "_runbook" ]; then"#;

fn zsh_with_dynamic(script: &str) -> Result<String> {
    let (head, dispatch) = script
        .split_once(ZSH_DISPATCH)
        .filter(|(head, _)| head.contains("\n_runbook() {\n"))
        .ok_or_else(|| Error::io("generating the zsh script", &std::io::Error::other("clap's script changed shape")))?;
    Ok(format!(
        "{}{ZSH_DYNAMIC}{ZSH_DISPATCH}{dispatch}",
        head.replacen("\n_runbook() {\n", "\n_runbook_clap() {\n", 1)
    ))
}

/// fish: one function gives the declared values after a parameter, else the parameters.
const FISH_DYNAMIC: &str = r#"
# Asked of the binary: a runbook's parameters and their declared values, and the profiles.
function __fish_runbook_run_words
    set -l typed (commandline -opc)[3..-1]
    set -l values (runbook __complete value $typed 2>/dev/null)
    if set -q values[1]
        printf '%s\n' $values
    else if string match -q -- '-*' (commandline -ct)
        runbook __complete params $typed 2>/dev/null
    end
end
function __fish_runbook_wants_value
    set -l typed (commandline -opc)[3..-1]
    test -n "$(runbook __complete value $typed 2>/dev/null)"
end
complete -c runbook -n "__fish_runbook_using_subcommand run" -a "(__fish_runbook_run_words)"
complete -c runbook -n "__fish_runbook_using_subcommand run; and __fish_runbook_wants_value" -f
"#;

/// fish completes an option's value only from that option's own lines: `--cluster` gets the
/// profiles' names there, and still a file name or anything typed (`-r`, not `-x`).
fn fish_profiles(script: &str) -> String {
    script
        .lines()
        .map(|line| {
            if line.contains(" -s c -l cluster ") && line.ends_with(" -r") {
                format!("{line} -a \"(runbook __complete profiles 2>/dev/null)\"\n")
            } else {
                format!("{line}\n")
            }
        })
        .collect()
}

/// clap_complete's fish generator leaves positional arguments out: the shipped runbooks are
/// offered here for the commands that take one, and fish still completes file names beside them.
fn fish_runbook_names() -> String {
    let mut out = String::from("\n# The shipped runbooks, beside paths to .rhai files.\n");
    for command in ["run", "describe", "lint"] {
        // After `run NAME --choice`, the choice's values only (FISH_DYNAMIC).
        let unless = if command == "run" { "; and not __fish_runbook_wants_value" } else { "" };
        for (name, summary) in crate::script::shipped_summaries() {
            out.push_str(&format!(
                "complete -c runbook -n \"__fish_runbook_using_subcommand {command}{unless}\" -a \"{name}\" -d '{}'\n",
                summary.replace('\\', "\\\\").replace('\'', "\\'")
            ));
        }
    }
    out
}

/// `runbook man`: one page, every command with its options, and the exit codes.
pub fn man() -> Result<u8> {
    let cmd = Arguments::command();
    let man = clap_mangen::Man::new(cmd.clone());
    let mut page = Vec::new();
    let head = man
        .render_title(&mut page)
        .and_then(|()| man.render_name_section(&mut page))
        .and_then(|()| man.render_synopsis_section(&mut page))
        .and_then(|()| man.render_description_section(&mut page));
    head.map_err(|e| Error::io("rendering the manual page", &e))?;
    let mut roff = Roff::new();
    roff.control("SH", ["COMMANDS"]);
    for (path, sub) in leaves(&cmd, "runbook") {
        command_section(&mut roff, &path, sub);
    }
    tail_sections(&mut roff);
    page.extend(roff.render().bytes());
    print(page_starting_with_th(&String::from_utf8_lossy(&page)).as_bytes())
}

/// Each rendered piece opens with roff's apostrophe definitions: kept once, after the `.TH` line,
/// which `man` and `file` expect first.
fn page_starting_with_th(pieces: &str) -> String {
    const PREAMBLE: [&str; 2] = [".ie \\n(.g .ds Aq \\(aq", ".el .ds Aq '"];
    let mut lines = pieces.lines().filter(|l| !PREAMBLE.contains(l));
    let mut page: String = lines.next().map(|th| format!("{th}\n")).unwrap_or_default();
    for line in PREAMBLE.iter().copied().chain(lines) {
        page.push_str(line);
        page.push('\n');
    }
    page
}

fn print(bytes: &[u8]) -> Result<u8> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes).and_then(|()| out.flush()).map_err(|e| Error::io("writing to stdout", &e))?;
    Ok(exit::OK)
}

/// Every command that runs something (`runbook plan show`, not `runbook plan`), with its full name.
fn leaves<'a>(cmd: &'a clap::Command, path: &str) -> Vec<(String, &'a clap::Command)> {
    cmd.get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
        .flat_map(|s| {
            let name = format!("{path} {}", s.get_name());
            let mut found = Vec::new();
            // A command with subcommands of its own can still run by itself (`runbook journal`).
            if !s.has_subcommands() || s.get_arguments().any(clap::Arg::is_positional) {
                found.push((name.clone(), s));
            }
            found.extend(leaves(s, &name));
            found
        })
        .collect()
}

fn command_section(roff: &mut Roff, path: &str, cmd: &clap::Command) {
    roff.control("SS", [path]);
    let usage = cmd.clone().bin_name(path).render_usage().to_string();
    for (i, line) in usage.trim_start_matches("Usage: ").lines().enumerate() {
        if i > 0 {
            roff.control("br", []);
        }
        let line = line.trim();
        roff.text([bold(path), roman(line.strip_prefix(path).unwrap_or(line).to_string())]);
    }
    if let Some(about) = cmd.get_long_about().or_else(|| cmd.get_about()) {
        for paragraph in about.to_string().split("\n\n") {
            roff.control("PP", []).text([roman(paragraph.replace('\n', " "))]);
        }
    }
    for arg in cmd.get_arguments().filter(|a| !a.is_hide_set() && !["help", "version"].contains(&a.get_id().as_str())) {
        roff.control("TP", []).text(arg_name(arg));
        let mut help = arg.get_help().map(ToString::to_string).unwrap_or_default();
        if let Some(env) = arg.get_env() {
            help.push_str(&format!(" [env: {}]", env.to_string_lossy()));
        }
        if let Some(default) = arg.get_default_values().first() {
            help.push_str(&format!(" [default: {}]", default.to_string_lossy()));
        }
        // A flag's possible values are those of its environment variable (`RUNBOOK_TLS=yes`).
        if arg.get_action().takes_values()
            && !arg.is_hide_possible_values_set()
            && !arg.get_possible_values().is_empty()
        {
            let values: Vec<String> = arg.get_possible_values().iter().map(|v| v.get_name().to_string()).collect();
            help.push_str(&format!(" [possible values: {}]", values.join(", ")));
        }
        roff.text([roman(help.trim().to_string())]);
    }
}

fn arg_name(arg: &clap::Arg) -> Vec<roff::Inline> {
    let value = arg
        .get_value_names()
        .and_then(|v| v.first())
        .map_or_else(|| arg.get_id().as_str().to_uppercase(), ToString::to_string);
    if arg.is_positional() {
        return vec![italic(format!("<{value}>"))];
    }
    let mut name = Vec::new();
    if let Some(short) = arg.get_short() {
        name.push(bold(format!("-{short}")));
    }
    if let Some(long) = arg.get_long() {
        if !name.is_empty() {
            name.push(roman(", "));
        }
        name.push(bold(format!("--{long}")));
    }
    if arg.get_action().takes_values() {
        name.push(roman(" "));
        name.push(italic(value));
    }
    name
}

/// What the parser does not know: the exit codes (`error::exit`, the README's table) and files.
fn tail_sections(roff: &mut Roff) {
    roff.control("SH", ["EXIT STATUS"]);
    for (code, meaning) in [
        (exit::OK, "success; for check, the cluster is healthy"),
        (exit::FAILED, "a step failed, or anything failed after the run had changed the cluster"),
        (
            exit::USAGE,
            "bad input (arguments, parameters, runbook, syntax, node selector, a file that is no journal); nothing was changed",
        ),
        (exit::REFUSED, "the cluster is unhealthy, or a safety check refused; nothing was changed"),
        (exit::UNREACHABLE, "the cluster could not be reached or authenticated against; nothing was changed"),
        (exit::NOT_CONFIRMED, "a confirmation was declined, or needed with no terminal and no --yes"),
        (exit::CANCELLED, "stopped by Ctrl-C"),
    ] {
        roff.control("TP", []).text([bold(code.to_string())]).text([roman(meaning)]);
    }
    roff.control("SH", ["FILES"]);
    roff.text([
        roman("The state directory is "),
        bold("$RUNBOOK_STATE_DIR"),
        roman(", else "),
        bold("$XDG_STATE_HOME/runbook"),
        roman(", else "),
        bold("~/.local/state/runbook"),
        roman(": journal/ (what each run that changed a cluster did), sandbox/, removed.jsonl, history."),
    ]);
    roff.control("SH", ["SEE ALSO"]);
    roff.text([
        bold("redis-cli"),
        roman("(1); "),
        bold("runbook run NAME --help"),
        roman(" for a runbook's parameters."),
    ]);
}
