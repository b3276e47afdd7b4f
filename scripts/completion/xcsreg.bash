# bash completion for xcsreg(1): its options and commands, the shipped
# scripts and modules (from `xcsreg scripts`), and the flags of a shipped
# script, read from its own --help so they are always those of the binary.
# A script that is not shipped is never run to complete it: files only.
# Installed as /usr/share/bash-completion/completions/xcsreg.

# The shipped scripts (what = scripts) or scripts and modules (what = all).
_xcsreg_shipped() { # xcsreg what
	"$1" scripts 2>/dev/null | awk -v what="$2" '
		/^modules/ { if (what != "all") exit; next }
		/^  [^ ]/ { print $1 }'
}

# "FLAG METAVAR" for each flag of a shipped script's --help.
_xcsreg_flags() { # xcsreg script
	"$1" run "$2" --help 2>/dev/null |
		sed -n '/^Flags:/,/^$/s/^ \{1,\}\(-[a-zA-Z], \)\{0,1\}\(--[a-z][a-z-]*\)\( \([A-Z][A-Z]*\)\)\{0,1\}.*/\2 \4/p'
}

_xcsreg() {
	local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD - 1]}
	local x=${COMP_WORDS[0]} i cmd="" cmd_i=0 script="" IFS=$'\n'
	COMPREPLY=()
	# --flag=value is split at "=" by COMP_WORDBREAKS
	if [ "$cur" = "=" ]; then
		cur="" prev=${COMP_WORDS[COMP_CWORD - 1]}
	elif [ "$prev" = "=" ] && [ "$COMP_CWORD" -ge 2 ]; then
		prev=${COMP_WORDS[COMP_CWORD - 2]}
	fi
	# the command: the first word after the host's options
	for ((i = 1; i < COMP_CWORD; i++)); do
		case ${COMP_WORDS[i]} in
		--log-format | --lua-dir) i=$((i + 1)) ;;
		-*) ;;
		*) cmd=${COMP_WORDS[i]} cmd_i=$i; break ;;
		esac
	done

	if [ -z "$cmd" ]; then
		case $prev in
		--log-format) COMPREPLY=($(compgen -W 'text json' -- "$cur")); return ;;
		--lua-dir) COMPREPLY=($(compgen -d -- "$cur")); return ;;
		esac
		if [[ $cur == -* ]]; then
			COMPREPLY=($(compgen -W '-q --quiet -v --verbose --log-format --lua-dir -h --help' -- "$cur"))
		else
			COMPREPLY=($(compgen -W 'run scripts cat version help' -- "$cur"))
		fi
		return
	fi

	case $cmd in
	cat)
		[ "$COMP_CWORD" -eq $((cmd_i + 1)) ] &&
			COMPREPLY=($(compgen -W "$(_xcsreg_shipped "$x" all)" -- "$cur"))
		return ;;
	run) ;;
	*) return ;;
	esac

	if [ "$COMP_CWORD" -eq $((cmd_i + 1)) ]; then
		COMPREPLY=($(compgen -W "$(_xcsreg_shipped "$x" scripts)" -- "$cur") $(compgen -f -X '!*.lua' -- "$cur") $(compgen -d -- "$cur"))
		return
	fi
	script=${COMP_WORDS[cmd_i + 1]}
	case $script in
	*/*) COMPREPLY=($(compgen -f -- "$cur")); return ;;
	esac
	local s shipped=""
	for s in $(_xcsreg_shipped "$x" scripts); do
		[ "$script" = "$s" ] || [ "$script.lua" = "$s" ] && shipped=$s
	done
	if [ -z "$shipped" ]; then
		COMPREPLY=($(compgen -f -- "$cur"))
		return
	fi

	local flags line flag meta
	flags=$(_xcsreg_flags "$x" "$shipped")
	if [[ $prev == --* ]]; then
		for line in $flags; do
			flag=${line%% *} meta=${line#* }
			[ "$flag" = "$prev" ] || continue
			case $flag:$meta in
			--dry-run:*) COMPREPLY=($(compgen -W 'client server' -- "$cur")) ;;
			--output:*) [ "$shipped" = status.lua ] && COMPREPLY=($(compgen -W 'text json' -- "$cur")) ||
				COMPREPLY=($(compgen -W 'json yaml' -- "$cur")) ;;
			*:FILE | *:PATH) COMPREPLY=($(compgen -f -- "$cur")) ;;
			*:DIR) COMPREPLY=($(compgen -d -- "$cur")) ;;
			*:) continue ;;
			esac
			return
		done
	fi
	case $prev in
	-o) COMPREPLY=($(compgen -W "$([ "$shipped" = status.lua ] && echo 'text json' || echo 'json yaml')" -- "$cur")); return ;;
	-n) return ;;
	esac
	if [[ $cur == -* ]] || [ -z "$cur" ]; then
		COMPREPLY=($(compgen -W "$(for line in $flags; do echo "${line%% *}"; done)" -- "$cur"))
	fi
}
complete -F _xcsreg xcsreg
