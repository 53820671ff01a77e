package governor.pii_test

import data.governor.pii

# the [kind, value] pairs found in a text, for compact assertions
_found(text) := {[s.kind, substring(text, s.start, s.end - s.start)] | some s in pii.find(text)}

_kinds(text) := {s.kind | some s in pii.find(text)}

# --- email -------------------------------------------------------------------------------------

test_email_found_with_offsets_and_replacement if {
	pii.find("write to jane.doe+news@mail.example.co.uk today") == [{
		"kind": "email", "start": 9, "end": 41, "replacement": "[REDACTED_EMAIL]",
	}]
}

test_email_offsets_are_code_points_after_unicode if {
	pii.find("日本語のメール: jane@example.com") == [{
		"kind": "email", "start": 9, "end": 25, "replacement": "[REDACTED_EMAIL]",
	}]
}

test_same_value_twice_is_found_twice if {
	[s.start | some s in pii.find("a@b.io, then a@b.io again")] == [0, 13]
}

test_email_at_sentence_end_excludes_the_full_stop if {
	_found("Mail bob@example.org.") == {["email", "bob@example.org"]}
}

test_email_starting_after_dots_is_found if {
	_found("...john@example.com") == {["email", "john@example.com"]}
}

test_invalid_emails_are_not_found if {
	every text in [
		"a..b@example.com", "john.@example.com", "x@-bad.example.com", "x@bad-.example.com",
		"user@localhost", "no at sign here", "@example.com", "x@example.c",
	] {
		not _kinds(text).email
	}
}

# --- phone -------------------------------------------------------------------------------------

test_us_phone_formats_are_found if {
	every text in ["555-123-4567", "(555) 123-4567", "555.123.4567", "555 123 4567", "1-555-123-4567", "(555)123-4567"] {
		_found(sprintf("call %s now", [text])) == {["phone", text]}
	}
}

test_international_phone_found_after_emoji if {
	pii.find("😀👍 call +44 20 7946 0958 now") == [{
		"kind": "phone", "start": 8, "end": 24, "replacement": "[REDACTED_PHONE]",
	}]
}

test_us_phone_right_after_an_ip_address_is_found if {
	_found("10.0.0.1 555-123-4567") == {["ipv4", "10.0.0.1"], ["phone", "555-123-4567"]}
}

test_international_phone_wins_over_the_us_number_inside_it if {
	_found("call +1 (555) 123-4567") == {["phone", "+1 (555) 123-4567"]}
}

test_plain_numbers_dates_and_order_ids_are_not_phones if {
	every text in [
		"order 5551234567", "on 2024-01-15", "on 12/25/2024", "ref ORD-555-123-4567",
		"id 555-123-4567-89", "id 123-456-7890", "v555.123.4567", "+12 345", "+703.4)-900-5 7-(3-408", "+1 ((555)) 123 4567",
		"#555-123-4567", "at 10:30", "count 1234",
	] {
		not _kinds(text).phone
	}
}

# --- US SSN ------------------------------------------------------------------------------------

test_ssn_found_with_dashes_and_spaces if {
	_found("ssn 123-45-6789 or 234 56 7890") == {["us_ssn", "123-45-6789"], ["us_ssn", "234 56 7890"]}
}

test_ssn_invalid_area_group_or_serial_not_found if {
	every text in ["000-12-3456", "666-12-3456", "912-12-3456", "999-12-3456", "123-00-4567", "123-45-0000"] {
		_kinds(sprintf("ssn %s", [text])) == set()
	}
}

test_ssn_glued_to_other_digits_not_found if {
	every text in ["1123-45-6789", "123-45-67890", "a123-45-6789", "x-123-45-6789"] {
		not _kinds(text).us_ssn
	}
}

# --- credit cards ------------------------------------------------------------------------------

test_luhn_valid_cards_found_in_every_format if {
	every text in ["4111111111111111", "4111 1111 1111 1111", "4111-1111-1111-1111", "378282246310005", "6011 0009 9013 9424"] {
		_found(sprintf("card %s ok", [text])) == {["credit_card", text]}
	}
}

test_luhn_invalid_card_not_found if {
	_kinds("card 4111 1111 1111 1112") == set()
	_kinds("random 1234567812345678") == set()
}

test_all_zero_and_leading_zero_numbers_are_not_cards if {
	_kinds("0000 0000 0000 0000") == set()
	_kinds("0411111111111111") == set()
}

test_card_glued_to_letters_not_found if {
	_kinds("x4111111111111111") == set()
	_kinds("4111111111111111y") == set()
}

test_too_short_or_too_long_digit_runs_are_not_cards if {
	_kinds("id 411111111111") == set()
	_kinds("id 41111111111111111111") == set()
}

test_luhn_check if {
	pii.luhn(["7", "9", "9", "2", "7", "3", "9", "8", "7", "1", "3"])
	not pii.luhn(["7", "9", "9", "2", "7", "3", "9", "8", "7", "1", "4"])
}

# --- IBAN --------------------------------------------------------------------------------------

test_iban_found_with_and_without_spaces if {
	_found("pay DE89 3704 0044 0532 0130 00 or GB82WEST12345698765432.") == {
		["iban", "DE89 3704 0044 0532 0130 00"],
		["iban", "GB82WEST12345698765432"],
	}
}

test_iban_mod97_is_exact_on_long_ibans if {
	pii.iban_mod97("GB82WEST12345698765432") == 1
	pii.iban_mod97("MT84MALT011000012345MTLCAST001S") == 1
	pii.iban_mod97("LC55HEMM000100010012001200023015") == 1
	pii.iban_mod97("GB83WEST12345698765432") != 1
}

test_iban_with_bad_check_digits_length_or_country_not_found if {
	every text in [
		"DE89 3704 0044 0532 0130 01", # check digits do not match
		"DE89 3704 0044 0532 0130", # too short for DE
		"XX89 3704 0044 0532 0130 00", # no such country
		"NL91ABNA04171643", # too short for NL
	] {
		not _kinds(text).iban
	}
}

# --- IPv4 --------------------------------------------------------------------------------------

test_ipv4_found if {
	_found("hosts 192.168.1.1, 10.0.0.1. and (255.255.255.0)") == {
		["ipv4", "192.168.1.1"], ["ipv4", "10.0.0.1"], ["ipv4", "255.255.255.0"],
	}
}

test_ipv4_out_of_range_octets_version_strings_and_leading_zeros_not_found if {
	every text in ["999.1.1.1", "256.1.1.1", "1.2.3.4.5", "version 1.2.3.4.5", "v1.2.3.4", "01.2.3.4", "1.2.3"] {
		not _kinds(text).ipv4
	}
}

# --- API keys and secrets ----------------------------------------------------------------------

test_api_keys_of_known_providers_found if {
	every key in [
		"sk-proj-abcdefghijklmnopqrstuvwxyz012345",
		"sk_live_4eC39HqLyjWDarjtT1zdp7dc",
		"rk_test_abcdefghijklmnop1234",
		"AKIAIOSFODNN7EXAMPLE",
		"ghp_abcdefghijklmnopqrstuvwxyz0123456789",
		"github_pat_11ABCDEFG0123456789_abcdefghij",
		"xoxb-1234567890-abcdefghij",
		"AIzaSyA-abcdefghijklmnopqrstuvwxyz01234",
	] {
		_found(sprintf("key: %s", [key])) == {["api_key", key]}
	}
}

test_api_key_lookalikes_not_found if {
	every text in [
		"a task-force-of-twenty-people-met-today", # sk- inside a word
		"sk-short", # too short
		"AKIAIOSFODNN7EXAMPLEX", # AWS id is exactly 20 characters
		"xAKIAIOSFODNN7EXAMPLE",
		"sk_live_short",
	] {
		not _kinds(text).api_key
	}
}

test_private_key_block_found_whole if {
	text := "key:\n-----BEGIN RSA PRIVATE KEY-----\nMIIEow+IBAAK/CAQEA=\n-----END RSA PRIVATE KEY-----\nbye"
	_found(text) == {[
		"secret",
		"-----BEGIN RSA PRIVATE KEY-----\nMIIEow+IBAAK/CAQEA=\n-----END RSA PRIVATE KEY-----",
	]}
}

test_truncated_private_key_still_covers_its_body if {
	_found("-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBg") == {["secret", "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBg"]}
}

test_bearer_token_value_is_the_span if {
	pii.find("Authorization: Bearer abcdef0123456789abcdef") == [{
		"kind": "secret", "start": 22, "end": 44, "replacement": "[REDACTED_SECRET]",
	}]
}

test_password_assignment_reports_the_value_only if {
	pii.find("password=hunter22!") == [{"kind": "secret", "start": 9, "end": 18, "replacement": "[REDACTED_SECRET]"}]
	_found(`{"password": "s3cr3t-Pa55"}`) == {["secret", "s3cr3t-Pa55"]}
	_found("DB_PASSWORD: x9!kLm, next") == {["secret", "x9!kLm"]}
}

test_offsets_stay_code_points_when_the_value_holds_an_emoji if {
	pii.find("😀 password=pa😀ss") == [{"kind": "secret", "start": 11, "end": 16, "replacement": "[REDACTED_SECRET]"}]
	pii.find("-----BEGIN PRIVATE KEY-----\n😀AB\n-----END PRIVATE KEY-----")[0].end == 57
}

test_length_counts_code_points if {
	[pii.length(s) | some s in ["", "abc", "😀", "a😀\nb", "e\u0301", "日本語"]] == [0, 3, 1, 4, 2, 3]
}

test_password_word_in_prose_is_not_a_secret if {
	_kinds("I forgot my password again") == set()
	_kinds("password: abc") == set()
}

test_bearer_value_that_is_also_an_api_key_is_reported_once_as_secret if {
	_found("Bearer sk-abcdefghijklmnopqrstuvwxyz123") == {["secret", "sk-abcdefghijklmnopqrstuvwxyz123"]}
}

# --- overlaps and shape ------------------------------------------------------------------------

test_phone_inside_email_is_reported_as_the_email_only if {
	_found("reach me at +15551234567@sms.example.com") == {["email", "+15551234567@sms.example.com"]}
}

test_card_overlapping_a_phone_wins if {
	pii.resolve({["credit_card", 5, 24], ["phone", 10, 24]}) == {["credit_card", 5, 24]}
}

test_longer_span_of_the_same_kind_wins_then_earlier if {
	pii.resolve({["phone", 0, 10], ["phone", 2, 20]}) == {["phone", 2, 20]}
	pii.resolve({["phone", 0, 10], ["phone", 5, 15]}) == {["phone", 0, 10]}
}

test_span_beaten_only_by_a_loser_is_kept if {
	# the secret beats the email, the email would beat the phone, but the email lost
	pii.resolve({["secret", 0, 10], ["email", 8, 20], ["phone", 15, 25]}) == {["secret", 0, 10], ["phone", 15, 25]}
}

test_disjoint_spans_all_kept if {
	pii.resolve({["phone", 0, 5], ["email", 5, 9], ["ipv4", 20, 30]}) == {["phone", 0, 5], ["email", 5, 9], ["ipv4", 20, 30]}
}

test_findings_are_sorted_by_start if {
	[s.kind | some s in pii.find("ip 10.1.2.3 mail a@b.io ssn 123-45-6789 card 4111111111111111")] == [
		"ipv4", "email", "us_ssn", "credit_card",
	]
}

test_non_string_and_empty_input_give_no_findings if {
	pii.find(42) == []
	pii.find(null) == []
	pii.find({"a": "a@b.io"}) == []
	pii.find(["a@b.io"]) == []
	pii.find("") == []
	pii.find("nothing to see here") == []
}

test_replacement_names_the_kind if {
	[pii.replacement(k) | some k in pii.kinds] == [
		"[REDACTED_SECRET]", "[REDACTED_API_KEY]", "[REDACTED_EMAIL]", "[REDACTED_IBAN]",
		"[REDACTED_CREDIT_CARD]", "[REDACTED_US_SSN]", "[REDACTED_IPV4]", "[REDACTED_PHONE]",
	]
}

# --- gates -------------------------------------------------------------------------------------

test_numbers_gate_is_the_union_of_its_group if {
	pii._numbers == concat("|", [d.pattern | some d in pii._detectors["0-9"]])
}

test_a_text_opens_only_the_gates_of_its_marks if {
	pii._gates("plain words only") == {""}
	pii._gates("order 12345 of user_1") == {"", "api"}
	pii._gates("call 555-123-4567 or mail a@b.io") == {"", "0-9", ".0-9", "@", "api"}
	pii._gates("+1 415 555 2671") == {"", "+0-9", "0-9"}
}

