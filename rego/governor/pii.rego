# PII and secret detection for the standard library.
#
#   find(text) -> [{kind, start, end, replacement}, ...]   sorted by start
#
# start/end are code-point offsets into text, end exclusive (what both engines' indexof_n and
# substring use). Kinds: email, phone, us_ssn, credit_card, iban, ipv4, api_key, secret.
# A non-string or empty text gives [].
#
# How it works, identically on regorus (Rust regex) and OPA (Go RE2):
#   1. every detector whose gate the text opens (a mark every match implies: a digit, "@", ...)
#      yields candidate strings (regex.find_n, leftmost-first);
#   2. each distinct candidate is validated (Luhn, IBAN mod-97, SSN areas, octets, ...);
#   3. indexof_n gives every place the value occurs, so a value seen twice is found twice;
#   4. a place counts only if the characters around it are a boundary for that kind
#      (so 1.2.3.4.5 is not an address and x4111... is not a card);
#   5. overlapping spans are resolved: a better span (higher-priority kind, then longer, then
#      earlier) wins, so a card number is never also reported as a phone.
#
# Engine notes (see shared/research/rego-engines.md §7.2): patterns use explicit ASCII classes,
# never \d \w \s \b (Unicode-aware in Rust, ASCII in Go), no lookarounds or backreferences;
# string lengths come from length(), never count() (see there); no number ever exceeds 2^53
# (the IBAN check works on 6-digit chunks).
package governor.pii

# Kinds in priority order: an earlier kind wins an overlap.
kinds := ["secret", "api_key", "email", "iban", "credit_card", "us_ssn", "ipv4", "phone"]

_rank := {kind: i | some i, kind in kinds}

replacement(kind) := sprintf("[REDACTED_%s]", [upper(kind)])

find(text) := [_span(t) | some t in _sorted(text)] if is_string(text)

find(text) := [] if not is_string(text)

# --- detectors ---------------------------------------------------------------------------------
#
# pattern: candidate regex. keyed: the pattern has two groups, (keyword)(value), and only the
# value is reported. before / after: a regex that must NOT match the (up to) two characters
# just before / after the value; "" means no check.
#
# The detectors are grouped by a gate: a mark of the text (see _gates) that every match of theirs
# implies. Only the groups of the text's gates run: a regex call costs several times more than a
# `contains` (each call compiles its pattern), and most text has no digit, "@", ":" or "=".

# The boundary patterns are written out in each detector rather than named once: _detectors is
# then a constant regorus builds almost for free, while every reference to another rule in it
# costs about a microsecond on each evaluation.
#   word:   before `[A-Za-z0-9_]$`, after `^[A-Za-z0-9_]`
#   number: before `[A-Za-z0-9_/#]$|[A-Za-z0-9_][.-]$`, after `^[A-Za-z0-9_/]|^[.-][A-Za-z0-9]`
#           (digits glued by a separator, as in 1.2.3.4.5, 555-123-4567-89 or ORD-555-123-4567,
#           are no boundary)

_detectors := {
	"-----BEGIN ": [
		# PEM private keys: header, body up to the first "-----", optional footer.
		{
			"kind": "secret", "keyed": false,
			"before": "", "after": "",
			"pattern": `-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----(?:[^-]|-{1,4}[^-])*(?:-----END [A-Z0-9 ]*PRIVATE KEY-----)?`,
		},
	],
	"": [
		# Authorization: Bearer <token>
		{
			"kind": "secret", "keyed": true,
			"before": "", "after": "",
			"pattern": `((?i:bearer)[ \t]+)([A-Za-z0-9._~+/=-]{16,})`,
		},
	],
	":=": [
		# password=..., "api_key": "...", client_secret: ...
		{
			"kind": "secret", "keyed": true,
			"before": "", "after": "",
			"pattern": `((?i:password|passwd|secret|api[_-]?key|access[_-]?token|auth[_-]?token|client[_-]?secret)["']?[ \t]*[:=][ \t]*["']?)([^ \t\r\n"',;&]{4,})`,
		},
	],
	"api": [
		# OpenAI / Anthropic style sk-..., Stripe sk_live_/rk_test_, AWS access key ids, GitHub,
		# Slack, Google API keys.
		{
			"kind": "api_key", "keyed": false,
			"before": `[A-Za-z0-9_]$`, "after": `^[A-Za-z0-9]`,
			"pattern": `sk-[A-Za-z0-9_-]{20,}|[sr]k_(?:live|test)_[A-Za-z0-9]{16,}|(?:AKIA|ASIA)[0-9A-Z]{16}|gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,}|xox[abposr]-[A-Za-z0-9-]{10,}|AIza[0-9A-Za-z_-]{35}`,
		},
	],
	"@": [
		{
			"kind": "email", "keyed": false,
			"before": `[A-Za-z0-9_%+-]$`, "after": `^[A-Za-z0-9_-]|^\.[A-Za-z0-9]`,
			"pattern": `[A-Za-z0-9_%+-][A-Za-z0-9._%+-]*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}`,
		},
	],
	"0-9": [
		{
			"kind": "iban", "keyed": false,
			"before": `[A-Za-z0-9_]$`, "after": `^[A-Za-z0-9_]`,
			"pattern": `[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?`,
		},
		{
			"kind": "credit_card", "keyed": false,
			"before": `[A-Za-z0-9_]$`, "after": `^[A-Za-z0-9_]`,
			"pattern": `[0-9](?:[ -]?[0-9]){12,18}`,
		},
		{
			"kind": "us_ssn", "keyed": false,
			"before": `[A-Za-z0-9_/#]$|[A-Za-z0-9_][.-]$`, "after": `^[A-Za-z0-9_/]|^[.-][A-Za-z0-9]`,
			"pattern": `[0-9]{3}-[0-9]{2}-[0-9]{4}|[0-9]{3} [0-9]{2} [0-9]{4}`,
		},
		# US (NANP): area code 2-9xx, always with separators (plain digit runs are ids), once with
		# the leading 1 and once without, because a "1 " that belongs to the text before (the end of
		# 10.0.0.1) would otherwise swallow the number.
		{
			"kind": "phone", "keyed": false,
			"before": `[A-Za-z0-9_/#]$|[A-Za-z0-9_][.-]$`, "after": `^[A-Za-z0-9_/]|^[.-][A-Za-z0-9]`,
			"pattern": `1[ .-]?(?:\([2-9][0-9]{2}\)[ .-]?|[2-9][0-9]{2}[ .-])[0-9]{3}[ .-][0-9]{4}`,
		},
		{
			"kind": "phone", "keyed": false,
			"before": `[A-Za-z0-9_/#]$|[A-Za-z0-9_][.-]$`, "after": `^[A-Za-z0-9_/]|^[.-][A-Za-z0-9]`,
			"pattern": `(?:\([2-9][0-9]{2}\)[ .-]?|[2-9][0-9]{2}[ .-])[0-9]{3}[ .-][0-9]{4}`,
		},
	],
	".0-9": [
		{
			"kind": "ipv4", "keyed": false,
			"before": `[A-Za-z0-9_]$|[0-9]\.$`, "after": `^[A-Za-z0-9_]|^\.[0-9]`,
			"pattern": `[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}`,
		},
	],
	"+0-9": [
		# international: +<country> then 7-14 more digits, at most two of " .-()" between digits
		{
			"kind": "phone", "keyed": false,
			"before": `[A-Za-z0-9_/#+]$`, "after": `^[A-Za-z0-9_/]|^[.-][A-Za-z0-9]`,
			"pattern": `\+[1-9](?:[ .()-]{0,2}[0-9]){7,14}`,
		},
	],
}

# [whole match, offset of the value in it, value]
_candidates(d, text) := {[m, 0, m] | some m in regex.find_n(d.pattern, text, -1)} if not d.keyed

_candidates(d, text) := {[g[0], length(g[1]), g[2]] |
	some g in regex.find_all_string_submatch_n(d.pattern, text, -1)
} if d.keyed

# The length of a string in code points. Not count(s): regorus counts UTF-16 units there (an
# emoji is 2), OPA code points, while both index and slice strings by code point.
length(s) := count(regex.find_n(`(?s:.)`, s, -1))

# The gates a text opens: "" always; a needle's gate when the text contains it; with a digit
# in the text (one small regex instead of ten `contains`), ".0-9" and "+0-9" when it also holds
# "." or "+", and "0-9" when one of that group's patterns matches (_numbers: their union, one
# regex call instead of five). Why the detectors need theirs: "api", every api_key alternative
# holds "-", "_" or "A"; ":=", a keyed secret's keyword is followed by ":" or "=".
_gates(text) := {gate | some [gate, needle] in _needles; contains(text, needle)} | _digit_gates(text)

_needles := [
	["", ""], ["-----BEGIN ", "-----BEGIN "], ["@", "@"], [":=", ":"], [":=", "="],
	["api", "-"], ["api", "_"], ["api", "A"],
]

_digit_gates(text) := {gate | some [gate, needle] in _digit_needles; contains(text, needle)} | {"0-9" |
	regex.match(_numbers, text)
} if {
	regex.match(`[0-9]`, text)
} else := set()

_digit_needles := [[".0-9", "."], ["+0-9", "+"]]

# The patterns of the "0-9" group, joined by "|" (pii_test checks that they stay the same).
_numbers := `[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?|[0-9](?:[ -]?[0-9]){12,18}|[0-9]{3}-[0-9]{2}-[0-9]{4}|[0-9]{3} [0-9]{2} [0-9]{4}|1[ .-]?(?:\([2-9][0-9]{2}\)[ .-]?|[2-9][0-9]{2}[ .-])[0-9]{3}[ .-][0-9]{4}|(?:\([2-9][0-9]{2}\)[ .-]?|[2-9][0-9]{2}[ .-])[0-9]{3}[ .-][0-9]{4}`

# Every validated occurrence, before overlap resolution: [kind, start, end].
_raw(text) := {[d.kind, start, end] |
	some gate in _gates(text)
	some d in _detectors[gate]
	some c in _candidates(d, text)
	valid(d.kind, c[2])
	some at in indexof_n(text, c[0])
	start := at + c[1]
	end := start + length(c[2])
	_bounded(text, start, end, d)
}

_bounded(text, start, end, d) if {
	not _glued_before(text, start, d.before)
	not _glued_after(text, end, d.after)
}

_glued_before(text, start, pattern) if {
	pattern != ""
	lo := max([start - 2, 0])
	regex.match(pattern, substring(text, lo, start - lo))
}

_glued_after(text, end, pattern) if {
	pattern != ""
	regex.match(pattern, substring(text, end, 2))
}

# --- overlap resolution ------------------------------------------------------------------------

# a beats b: higher-priority kind, then longer, then earlier
_beats(a, b) if _rank[a[0]] < _rank[b[0]]

_beats(a, b) if {
	a[0] == b[0]
	(a[2] - a[1]) > (b[2] - b[1])
}

_beats(a, b) if {
	a[0] == b[0]
	(a[2] - a[1]) == (b[2] - b[1])
	a[1] < b[1]
}

_winners(spans) := {s |
	some s in spans
	not _beaten(s, spans)
}

_beaten(s, spans) if {
	some t in spans
	t[1] < s[2]
	s[1] < t[2]
	_beats(t, s)
}

# Overlap resolution over a set of [kind, start, end]. Two rounds of greedy selection: the
# undisputed winners, then among the spans they do not touch, the winners again (so a span beaten
# only by a span that itself lost still counts).
resolve(raw) := first | second if {
	first := _winners(raw)
	rest := {s |
		some s in raw
		not first[s]
		not _touches(s, first)
	}
	second := _winners(rest)
}

_touches(s, spans) if {
	some t in spans
	t[1] < s[2]
	s[1] < t[2]
}

# [start, end, kind] sorted. Spans rarely overlap, and when sorted by start, two of them overlap
# only if two neighbours do: resolve only then.
_sorted(text) := _sorted_resolved(_raw(text))

_sorted_resolved(raw) := spans if {
	spans := sort([[s[1], s[2], s[0]] | some s in raw])
	not _neighbours_overlap(spans)
} else := spans if {
	spans := sort([[s[1], s[2], s[0]] | some s in resolve(raw)])
}

_neighbours_overlap(spans) if {
	count(spans) > 1
	some i in numbers.range(1, count(spans) - 1)
	spans[i][0] < spans[i - 1][1]
}

_span(t) := {"kind": t[2], "start": t[0], "end": t[1], "replacement": replacement(t[2])}

# --- validation --------------------------------------------------------------------------------

_digits(s) := regex.find_n(`[0-9]`, s, -1)

valid("secret", value) if count(value) > 0

valid("api_key", value) if count(value) > 0

valid("email", value) if {
	parts := split(value, "@")
	count(parts) == 2
	local := parts[0]
	count(local) <= 64
	not endswith(local, ".")
	not contains(local, "..")
	not regex.match(`(^|\.)-|-($|\.)`, parts[1])
}

valid("ipv4", value) if {
	every octet in split(value, ".") {
		regex.match(`^(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])$`, octet)
	}
}

# area 000, 666 and 900-999, group 00 and serial 0000 are never issued
valid("us_ssn", value) if {
	d := concat("", _digits(value))
	area := substring(d, 0, 3)
	area != "000"
	area != "666"
	not startswith(area, "9")
	substring(d, 3, 2) != "00"
	substring(d, 5, 4) != "0000"
}

valid("credit_card", value) if {
	d := _digits(value)
	count(d) >= 13
	count(d) <= 19
	d[0] != "0"
	luhn(d)
}

valid("phone", value) if {
	n := count(_digits(value))
	n >= 10
	n <= 15
	regex.match(`^[^()]*(\([^()]*\)[^()]*)?$`, value) # at most one (...) pair, in order
}

valid("iban", value) if {
	compact := replace(value, " ", "")
	_iban_length[substring(compact, 0, 2)] == count(compact)
	iban_mod97(compact) == 1
}

# Luhn over an array of digit strings: from the right, every second digit is doubled. The
# reversed digits are read in pairs, "ab" worth a + (2b, minus 9 when above 9).
luhn(digits) if {
	pairs := regex.find_n(`[0-9]{1,2}`, strings.reverse(concat("", digits)), -1)
	sum([_luhn_pair[p] | some p in pairs]) % 10 == 0
}

_luhn_pair := {
	"00": 0, "01": 2, "02": 4, "03": 6, "04": 8, "05": 1, "06": 3, "07": 5, "08": 7, "09": 9,
	"10": 1, "11": 3, "12": 5, "13": 7, "14": 9, "15": 2, "16": 4, "17": 6, "18": 8, "19": 10,
	"20": 2, "21": 4, "22": 6, "23": 8, "24": 10, "25": 3, "26": 5, "27": 7, "28": 9, "29": 11,
	"30": 3, "31": 5, "32": 7, "33": 9, "34": 11, "35": 4, "36": 6, "37": 8, "38": 10, "39": 12,
	"40": 4, "41": 6, "42": 8, "43": 10, "44": 12, "45": 5, "46": 7, "47": 9, "48": 11, "49": 13,
	"50": 5, "51": 7, "52": 9, "53": 11, "54": 13, "55": 6, "56": 8, "57": 10, "58": 12, "59": 14,
	"60": 6, "61": 8, "62": 10, "63": 12, "64": 14, "65": 7, "66": 9, "67": 11, "68": 13, "69": 15,
	"70": 7, "71": 9, "72": 11, "73": 13, "74": 15, "75": 8, "76": 10, "77": 12, "78": 14, "79": 16,
	"80": 8, "81": 10, "82": 12, "83": 14, "84": 16, "85": 9, "86": 11, "87": 13, "88": 15, "89": 17,
	"90": 9, "91": 11, "92": 13, "93": 15, "94": 17, "95": 10, "96": 12, "97": 14, "98": 16, "99": 18,
	"0": 0, "1": 1, "2": 2, "3": 3, "4": 4, "5": 5, "6": 6, "7": 7, "8": 8, "9": 9,
}

# ISO 13616 mod-97 of an IBAN without spaces (upper case): the first four characters move to
# the end, letters become 10..35, and the digit string D is cut into chunks of 6 digits:
# D mod 97 = sum(chunk mod 97 * (10^k mod 97)) mod 97, k = digits after the chunk. A chunk is
# read as to_number("1" + chunk) - 10^len (to_number rejects leading zeros), so no value ever
# exceeds 2^53 (at most 12 chunks * 96 * 96).
iban_mod97(compact) := sum(terms) % 97 if {
	moved := concat("", [substring(compact, 4, -1), substring(compact, 0, 4)])
	digits := strings.replace_n(_iban_letters, moved)
	regex.match(`^[0-9]{1,72}$`, digits)
	n := count(digits)
	terms := [t |
		some j in numbers.range(0, floor((n - 1) / 6))
		chunk := substring(digits, 6 * j, 6)
		size := count(chunk)
		value := to_number(concat("", ["1", chunk])) - _pow10[size]
		t := (value % 97) * _pow10_mod97[(n - (6 * j)) - size]
	]
}

_pow10 := [1, 10, 100, 1000, 10000, 100000, 1000000]

_iban_letters := {
	"A": "10", "B": "11", "C": "12", "D": "13", "E": "14", "F": "15", "G": "16", "H": "17", "I": "18",
	"J": "19", "K": "20", "L": "21", "M": "22", "N": "23", "O": "24", "P": "25", "Q": "26", "R": "27",
	"S": "28", "T": "29", "U": "30", "V": "31", "W": "32", "X": "33", "Y": "34", "Z": "35",
}

# 10^k mod 97 for k = 0..71
_pow10_mod97 := [
	1, 10, 3, 30, 9, 90, 27, 76, 81, 34, 49, 5, 50, 15, 53, 45, 62, 38, 89, 17, 73, 51, 25, 56,
	75, 71, 31, 19, 93, 57, 85, 74, 61, 28, 86, 84, 64, 58, 95, 77, 91, 37, 79, 14, 43, 42, 32, 29,
	96, 87, 94, 67, 88, 7, 70, 21, 16, 63, 48, 92, 47, 82, 44, 52, 35, 59, 8, 80, 24, 46, 72, 41,
]

# IBAN length per country (SWIFT IBAN registry); other country codes are not IBANs.
_iban_length := {
	"AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22,
	"BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28,
	"EE": 20, "EG": 29, "ES": 24, "FI": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23,
	"GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26,
	"IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20,
	"LV": 21, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MR": 27, "MT": 31, "MU": 30, "NL": 18,
	"NO": 15, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "SA": 24,
	"SC": 31, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "ST": 25, "SV": 28, "TL": 23, "TN": 24,
	"TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
}
