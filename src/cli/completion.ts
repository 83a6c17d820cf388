/**
 * `mcp-mtls completion bash|zsh|fish`: shell completion generated from the commander program
 * itself (its commands, subcommands and options, as `--help` shows them), so it never lists a
 * command the program does not have or misses one it has.
 */
import { Command, type Option } from 'commander';
import { MtlsError } from '../errors.js';

/** One command of the tree: the words that reach it, what it offers next. */
interface Node {
  /** e.g. '' for the program, 'ca init' */
  readonly path: string;
  readonly subs: readonly { name: string; description: string }[];
  readonly options: readonly { flags: string[]; takesValue: boolean; description: string }[];
}

const firstLine = (s: string) => (s.split('\n')[0] ?? '').trim();

/** Every command of the program with what `--help` shows of it (visible commands and options only). */
export function commandTree(program: Command): Node[] {
  const out: Node[] = [];
  const walk = (cmd: Command, path: string) => {
    const help = cmd.createHelp();
    const subs = help.visibleCommands(cmd);
    const options = help.visibleOptions(cmd).map((o: Option) => ({
      flags: [o.long, o.short].filter((f): f is string => typeof f === 'string'),
      takesValue: o.required || o.optional,
      description: firstLine(o.description),
    }));
    out.push({ path, subs: subs.map((c) => ({ name: c.name(), description: firstLine(c.description()) })), options });
    for (const c of subs) walk(c, path ? `${path} ${c.name()}` : c.name());
  };
  walk(program, '');
  return out;
}

export const SHELLS = ['bash', 'zsh', 'fish'] as const;
export type Shell = (typeof SHELLS)[number];

/** The completion script of `shell` for `program` (named by `program.name()`). */
export function completionScript(program: Command, shell: string): string {
  const tree = commandTree(program);
  const name = program.name();
  const fn = `_${name.replace(/[^A-Za-z0-9]/g, '_')}`;
  if (shell === 'bash') return bash(tree, name, fn);
  if (shell === 'zsh') return zsh(tree, name, fn);
  if (shell === 'fish') return fish(tree, name, fn);
  throw new MtlsError('USAGE', `no completion for the shell "${shell}"`, { hint: `use one of: ${SHELLS.join(', ')}` });
}

/** single-quoted for sh, bash, zsh and fish (fish: a quote is \' inside quotes) */
const sq = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
const fq = (s: string) => `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;

const cases = (tree: Node[], words: (n: Node) => string[]) =>
  tree
    .map((n) => [n.path, words(n)] as const)
    .filter(([, w]) => w.length > 0)
    .map(([p, w]) => `    ${sq(p)}) REPLY=${sq(w.join(' '))} ;;`)
    .join('\n');

function bash(tree: Node[], name: string, fn: string): string {
  return `# bash completion for ${name}, generated from the program by \`${name} completion bash\`
# use: source <(${name} completion bash)   (or save it in ~/.local/share/bash-completion/completions/${name})
${fn}_subs() {
  case "$1" in
${cases(tree, (n) => n.subs.map((s) => s.name))}
    *) REPLY='' ;;
  esac
}
${fn}_opts() {
  case "$1" in
${cases(tree, (n) => n.options.flatMap((o) => o.flags))}
    *) REPLY='' ;;
  esac
}
${fn}_vals() {
  case "$1" in
${cases(tree, (n) => n.options.filter((o) => o.takesValue).flatMap((o) => o.flags))}
    *) REPLY='' ;;
  esac
}
${fn}() {
  local cur=\${COMP_WORDS[COMP_CWORD]} prev=\${COMP_WORDS[COMP_CWORD-1]} cpath='' w i REPLY
  # the command so far: words that name a subcommand of the one before (option values skipped)
  for ((i = 1; i < COMP_CWORD; i++)); do
    w=\${COMP_WORDS[i]}
    if [[ $w == -* ]]; then
      ${fn}_vals "$cpath"
      [[ " $REPLY " == *" $w "* ]] && ((i++))
      continue
    fi
    ${fn}_subs "$cpath"
    [[ " $REPLY " == *" $w "* ]] && cpath=\${cpath:+$cpath }$w
  done
  if ((COMP_CWORD > 1)) && [[ $prev == -* ]]; then
    ${fn}_vals "$cpath"
    if [[ " $REPLY " == *" $prev "* ]]; then
      COMPREPLY=($(compgen -f -- "$cur"))
      return 0
    fi
  fi
  if [[ $cur == -* ]]; then ${fn}_opts "$cpath"; else ${fn}_subs "$cpath"; fi
  COMPREPLY=($(compgen -W "$REPLY" -- "$cur"))
  # nothing to offer: an argument (a certificate, a policy file...)
  if ((\${#COMPREPLY[@]} == 0)) && [[ $cur != -* ]]; then COMPREPLY=($(compgen -f -- "$cur")); fi
  return 0
}
complete -o filenames -F ${fn} ${name}
`;
}

function zsh(tree: Node[], name: string, fn: string): string {
  const zcase = (n: Node) => {
    const subs = n.subs.map((s) => sq(`${s.name}:${s.description}`));
    const opts = n.options.flatMap((o) => o.flags.map((f) => sq(`${f.replace(/:/g, '\\:')}:${o.description}`)));
    const vals = n.options.filter((o) => o.takesValue).flatMap((o) => o.flags);
    return `    ${sq(n.path)})
      subs=(${subs.join(' ')})
      opts=(${opts.join(' ')})
      vals=(${vals.join(' ')}) ;;`;
  };
  const subsOf = tree.map((n) => `    ${sq(n.path)}) reply=(${n.subs.map((s) => s.name).join(' ')}) ;;`).join('\n');
  const valsOf = tree.map((n) => `    ${sq(n.path)}) reply=(${n.options.filter((o) => o.takesValue).flatMap((o) => o.flags).join(' ')}) ;;`).join('\n');
  return `#compdef ${name}
# zsh completion for ${name}, generated from the program by \`${name} completion zsh\`
# use: source <(${name} completion zsh)   (after compinit), or save it as _${name} in your $fpath
${fn}_subs() {
  case "$1" in
${subsOf}
    *) reply=() ;;
  esac
}
${fn}_vals() {
  case "$1" in
${valsOf}
    *) reply=() ;;
  esac
}
${fn}() {
  local cpath='' w i
  local -a subs opts vals reply
  # the command so far: words that name a subcommand of the one before (option values skipped)
  for ((i = 2; i < CURRENT; i++)); do
    w=\${words[i]}
    if [[ $w == -* ]]; then
      ${fn}_vals "$cpath"
      (( \${reply[(Ie)$w]} )) && ((i++))
      continue
    fi
    ${fn}_subs "$cpath"
    (( \${reply[(Ie)$w]} )) && cpath=\${cpath:+$cpath }$w
  done
  case "$cpath" in
${tree.map(zcase).join('\n')}
  esac
  if (( CURRENT > 2 )) && (( \${vals[(Ie)\${words[CURRENT-1]}]} )); then
    _files
  elif [[ \${words[CURRENT]} == -* ]]; then
    _describe -t options 'option' opts
  elif (( \${#subs} )); then
    _describe -t commands 'command' subs
  else
    _files
  fi
}
if [[ $zsh_eval_context[-1] == loadautofunc ]]; then
  ${fn} "$@"
else
  compdef ${fn} ${name}
fi
`;
}

function fish(tree: Node[], name: string, fn: string): string {
  const lines: string[] = [];
  for (const n of tree) {
    const cond = `${fn}_at ${fq(n.path)}`;
    for (const s of n.subs) lines.push(`complete -c ${name} -n ${fq(cond)} -a ${fq(s.name)} -d ${fq(s.description)}`);
    for (const o of n.options) {
      const flags = o.flags.map((f) => (f.startsWith('--') ? `-l ${fq(f.slice(2))}` : `-s ${fq(f.slice(1))}`)).join(' ');
      lines.push(`complete -c ${name} -n ${fq(cond)} ${flags}${o.takesValue ? ' -r -F' : ''} -d ${fq(o.description)}`);
    }
  }
  const subsOf = tree
    .filter((n) => n.subs.length > 0)
    .map((n) => `        case ${fq(n.path)}\n            printf '%s\\n' ${n.subs.map((s) => fq(s.name)).join(' ')}`)
    .join('\n');
  const valsOf = tree
    .filter((n) => n.options.some((o) => o.takesValue))
    .map((n) => `        case ${fq(n.path)}\n            printf '%s\\n' ${n.options.filter((o) => o.takesValue).flatMap((o) => o.flags).map(fq).join(' ')}`)
    .join('\n');
  return `# fish completion for ${name}, generated from the program by \`${name} completion fish\`
# use: ${name} completion fish | source   (or save it as ~/.config/fish/completions/${name}.fish)
function ${fn}_subs
    switch "$argv[1]"
${subsOf}
    end
end
function ${fn}_vals
    switch "$argv[1]"
${valsOf}
    end
end
# the command so far: words that name a subcommand of the one before (option values skipped)
function ${fn}_path
    set -l cpath ''
    set -l skip 0
    for w in (commandline -opc)[2..-1]
        if test $skip = 1
            set skip 0
            continue
        end
        if string match -q -- '-*' $w
            contains -- $w (${fn}_vals "$cpath"); and set skip 1
            continue
        end
        if contains -- $w (${fn}_subs "$cpath")
            set cpath (string trim -- "$cpath $w")
        end
    end
    echo $cpath
end
function ${fn}_at
    set -l p (${fn}_path)
    test "$p" = "$argv[1]"
end
complete -c ${name} -e
${lines.join('\n')}
`;
}

/** Registers `completion`. `program` is the whole program, read when the command runs (so every command is in it). */
export function registerCompletion(program: Command, print: (text: string) => void): void {
  program
    .command('completion')
    .description('print a shell completion script (bash, zsh or fish), generated from the commands and options of this program')
    .argument('<shell>', SHELLS.join(' | '))
    .addHelpText(
      'after',
      `
Examples:
  $ source <(mcp-mtls completion bash)          # in ~/.bashrc
  $ source <(mcp-mtls completion zsh)           # in ~/.zshrc, after compinit
  $ mcp-mtls completion fish > ~/.config/fish/completions/mcp-mtls.fish`,
    )
    .action((shell: string) => print(completionScript(program, shell)));
}
