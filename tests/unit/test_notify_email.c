/* test_notify_email.c — core/notify for e-mail channels: the plain-text
 * line, the RFC 5322 message (headers, encoding, folding, CRLF, no header
 * injection) and the SMTP envelope address. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>

#include "core/notify.h"
#include "lib/secret.h"
#include "helpers.h"

static char *plain(const char *event, const char *data_json)
{
	json_t *data = data_json ? json_loads(data_json, 0, NULL) : NULL;
	struct kx_buf b;
	char *s;
	if (data_json)
		assert_non_null(data);
	kx_buf_init(&b, 0);
	assert_int_equal(kx_notify_plain_text(event, data, &b), 0);
	s = kx_buf_take(&b, NULL);
	assert_non_null(s);
	json_decref(data);
	return s;
}

static const char INC[] = "{\"id\":\"INC-20261125-001\",\"title\":\"Duplicate comments\","
			  "\"severity\":\"P1\",\"status\":\"investigating\"}";

static void plain_text_has_no_mrkdwn(void **state)
{
	char *s;
	(void)state;

	s = plain("incident.declared", INC);
	assert_string_equal(s, "🚨 P1 INC-20261125-001 declared: Duplicate comments (status "
			       "investigating)");
	free(s);
	s = plain("incident.declared",
		  "{\"id\":\"INC-1\",\"title\":\"<!channel> a&b\\r\\nBcc: x@y\",\"severity\":\"P2\"}");
	assert_string_equal(s, "🚨 P2 INC-1 declared: <!channel> a&b  Bcc: x@y");
	free(s);
	s = plain("switch.set",
		  "{\"id\":\"sw_1\",\"selector\":\"client=acme\",\"mode\":\"block\",\"reason\":\"r\","
		  "\"set_by\":\"alice\",\"incident\":\"INC-1\",\"expires_at\":\"2026-11-25T21:00:00Z\"}");
	assert_string_equal(s, "🛑 Emergency stop: switch sw_1 block on client=acme by alice — "
			       "reason: r (until 2026-11-25T21:00:00Z, incident INC-1)");
	free(s);
	s = plain("switch.cleared", "{\"id\":\"sw_1\",\"selector\":\"\",\"set_by\":\"alice\","
				    "\"cleared_by\":\"bob\",\"clear_reason\":\"fixed `it`\"}");
	assert_string_equal(s, "✅ Switch sw_1 cleared on everything by bob — reason: fixed `it`");
	free(s);
	s = plain("switch.resumed", "{\"id\":\"sw_1\",\"selector\":\"a=b\",\"set_by\":\"alice\"}");
	assert_string_equal(s, "↗️ Switch sw_1 resuming (ramping back up) on a=b by alice");
	free(s);
	s = plain("cap.set", "{\"id\":\"c<1>\",\"n\":3,\"on\":true,\"skip\":null,\"o\":{}}");
	assert_string_equal(s, "cap.set: id=c<1>, n=3, on=true");
	free(s);
	s = plain("approval.requested", NULL);
	assert_string_equal(s, "approval.requested");
	free(s);
}

struct msg {
	char *text;
	size_t len;
};

static struct msg message(const char *event, const char *data_json, const char *labels_json,
			  const char *from, char *const *to, size_t nto, const char *public_url)
{
	struct kx_notify_email m = {0};
	struct kx_buf b;
	struct msg out;

	m.from = from;
	m.to = to;
	m.nto = nto;
	m.event = event;
	m.delivery = "ntf_0123456789abcdef";
	m.data = data_json ? json_loads(data_json, 0, NULL) : NULL;
	m.labels = labels_json ? json_loads(labels_json, 0, NULL) : NULL;
	m.public_url = public_url;
	m.date = T("2026-11-25T20:30:05.250Z");
	kx_buf_init(&b, 0);
	assert_int_equal(kx_notify_email_message(&m, &b), 0);
	out.text = kx_buf_take(&b, &out.len);
	assert_non_null(out.text);
	json_decref(m.data);
	json_decref(m.labels);
	return out;
}

/* Every line ends in CRLF, no bare CR or LF, none over 998 bytes. */
static void assert_lines(const struct msg *m)
{
	size_t start = 0;
	assert_true(m->len >= 2);
	assert_memory_equal(m->text + m->len - 2, "\r\n", 2);
	for (size_t i = 0; i < m->len; i++) {
		if (m->text[i] == '\r') {
			assert_true(i + 1 < m->len && m->text[i + 1] == '\n');
			assert_true(i - start <= 998);
			start = i + 2;
			i++;
		} else {
			assert_true(m->text[i] != '\n');
		}
	}
}

/* The header block (up to the blank line), NUL-terminated in place. */
static char *headers(struct msg *m)
{
	char *end = strstr(m->text, "\r\n\r\n");
	assert_non_null(end);
	end[2] = '\0';
	return m->text;
}

static void message_headers_and_body(void **state)
{
	char *to[] = {"oncall@example.org", "Lead <lead@example.org>"};
	struct msg m = message("incident.declared", INC, "{\"client\":\"acme\"}",
			       "Klaxon <klaxon@example.org>", to, 2, "https://klaxon.example.org/");
	char *body;
	(void)state;

	assert_lines(&m);
	body = strstr(m.text, "\r\n\r\n") + 4;
	assert_string_equal(
		body,
		"🚨 P1 INC-20261125-001 declared: Duplicate comments (status investigating)\r\n"
		"\r\n"
		"id: INC-20261125-001\r\n"
		"title: Duplicate comments\r\n"
		"severity: P1\r\n"
		"status: investigating\r\n"
		"labels: client=acme\r\n"
		"\r\n"
		"Open in Klaxon: https://klaxon.example.org/incidents/INC-20261125-001\r\n"
		"\r\n"
		"-- \r\n"
		"Klaxon, event incident.declared, delivery ntf_0123456789abcdef\r\n");
	assert_string_equal(headers(&m),
			    "From: Klaxon <klaxon@example.org>\r\n"
			    "To: oncall@example.org, Lead <lead@example.org>\r\n"
			    /* "🚨 P1 INC-20261125-001 declared: Duplica" | "te comments
			     * (status investigating)": 42 bytes of UTF-8, then the rest */
			    "Subject: =?UTF-8?B?8J+aqCBQMSBJTkMtMjAyNjExMjUtMDAxIGRlY2xhcmVkOiBEdXBsaWNh?=\r\n"
			    " =?UTF-8?B?dGUgY29tbWVudHMgKHN0YXR1cyBpbnZlc3RpZ2F0aW5nKQ==?=\r\n"
			    "Date: Wed, 25 Nov 2026 20:30:05 +0000\r\n"
			    "Message-ID: <ntf_0123456789abcdef@klaxon>\r\n"
			    "X-Klaxon-Event: incident.declared\r\n"
			    "X-Klaxon-Delivery: ntf_0123456789abcdef\r\n"
			    "Auto-Submitted: auto-generated\r\n"
			    "MIME-Version: 1.0\r\n"
			    "Content-Type: text/plain; charset=utf-8\r\n"
			    "Content-Transfer-Encoding: 8bit\r\n");
	free(m.text);
}

static void ascii_subject_is_folded_not_encoded(void **state)
{
	char *to[] = {"a@example.org"};
	struct msg m = message("cap.set",
			       "{\"id\":\"instagram-comments\",\"spec\":\"platform=instagram,"
			       "action=comment: 200/1d\",\"by\":\"alice\",\"reason\":\"launch\"}",
			       NULL, "klaxon@example.org", to, 1, NULL);
	char *h;
	(void)state;

	assert_lines(&m);
	h = headers(&m);
	/* "Subject: " and the first two words would be 80 characters */
	assert_contains(h, "\r\nSubject: cap.set: id=instagram-comments,\r\n"
			   " spec=platform=instagram,action=comment: 200/1d, by=alice, "
			   "reason=launch\r\n");
	assert_not_contains(h, "=?UTF-8?");
	/* no public URL, no incident: no link */
	free(m.text);
}

static void user_text_cannot_inject_headers(void **state)
{
	char *to[] = {"a@example.org\r\nBcc: evil@example.org"};
	struct msg m = message(
		"approval.requested",
		"{\"id\":\"apr_1\",\"note\":\"hi\\r\\nBcc: evil@example.org\\r\\n\\r\\nbody\"}",
		"{\"client\":\"x\\r\\nBcc: evil@example.org\"}", "k@example.org\nX-Evil: 1", to, 1,
		NULL);
	char *h;
	(void)state;

	assert_lines(&m);
	assert_not_contains(m.text, "\r\nBcc:");
	assert_not_contains(m.text, "\r\nX-Evil:");
	h = headers(&m);
	assert_contains(h, "From: k@example.orgX-Evil: 1\r\n");
	assert_contains(h, "To: a@example.orgBcc: evil@example.org\r\n");
	free(m.text);
}

static void long_text_is_cut_and_wrapped(void **state)
{
	char *title = repeat("é", 400), *reason = repeat("word ", 300), *data, *h;
	char *to[] = {"a@example.org"};
	struct msg m;
	size_t n;
	(void)state;

	n = strlen(title) + strlen(reason) + 256;
	data = malloc(n);
	snprintf(data, n,
		 "{\"id\":\"sw_1\",\"selector\":\"%s\",\"mode\":\"block\",\"reason\":\"%s\","
		 "\"set_by\":\"%s\",\"incident\":\"%s\"}",
		 title, reason, title, reason);
	m = message("switch.set", data, NULL, "k@example.org", to, 1, NULL);
	assert_lines(&m); /* the body's first line is well over 998 bytes, wrapped */
	h = headers(&m);
	/* the subject: KX_NOTIFY_SUBJECT_MAX bytes at most, 42-byte encoded words */
	assert_true(strlen(strstr(h, "Subject: ")) < 400);
	free(m.text);
	free(data);
	free(title);
	free(reason);
}

static void dates(void **state)
{
	char *to[] = {"a@example.org"};
	struct kx_notify_email e = {"k@example.org", to, 1, "x.y", "ntf_1", NULL, NULL, NULL, 0};
	struct kx_buf b;
	(void)state;

	kx_buf_init(&b, 0);
	assert_int_equal(kx_notify_email_message(&e, &b), 0);
	assert_contains(kx_buf_str(&b), "\r\nDate: Thu, 01 Jan 1970 00:00:00 +0000\r\n");
	kx_buf_release(&b);
	e.date = T("2024-02-29T23:59:59Z");
	assert_int_equal(kx_notify_email_message(&e, &b), 0);
	assert_contains(kx_buf_str(&b), "\r\nDate: Thu, 29 Feb 2024 23:59:59 +0000\r\n");
	kx_buf_release(&b);
	e.date = T("1969-12-31T12:00:00Z");
	assert_int_equal(kx_notify_email_message(&e, &b), 0);
	assert_contains(kx_buf_str(&b), "\r\nDate: Wed, 31 Dec 1969 12:00:00 +0000\r\n");
	kx_buf_release(&b);
}

static void the_message_is_bounded(void **state)
{
	char *to[] = {"a@example.org"};
	struct kx_notify_email e = {"k@example.org", to, 1, "x.y", "ntf_1", NULL, NULL, NULL, 0};
	struct kx_buf b;
	(void)state;

	kx_buf_init(&b, 64); /* too small: fails cleanly, released */
	assert_int_equal(kx_notify_email_message(&e, &b), KX_ENOMEM);
	assert_int_equal(b.len, 0);
	assert_null(b.data);
}

static char *envelope(const char *addr)
{
	struct kx_buf b;
	kx_buf_init(&b, 0);
	assert_int_equal(kx_notify_email_envelope(addr, &b), 0);
	return kx_buf_take(&b, NULL);
}

static void envelope_addresses(void **state)
{
	static const char *const cases[][2] = {
		{"oncall@example.org", "<oncall@example.org>"},
		{"  oncall@example.org ", "<oncall@example.org>"},
		{"<oncall@example.org>", "<oncall@example.org>"},
		{"On Call <oncall@example.org>", "<oncall@example.org>"},
		{"\"A <b>\" <oncall@example.org>", "<oncall@example.org>"},
		{"a@example.org\r\nRCPT TO:x@y", "<a@example.orgRCPTTO:x@y>"},
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *s = envelope(cases[i][0]);
		assert_string_equal(s, cases[i][1]);
		free(s);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(plain_text_has_no_mrkdwn),
		cmocka_unit_test(message_headers_and_body),
		cmocka_unit_test(ascii_subject_is_folded_not_encoded),
		cmocka_unit_test(user_text_cannot_inject_headers),
		cmocka_unit_test(long_text_is_cut_and_wrapped),
		cmocka_unit_test(dates),
		cmocka_unit_test(the_message_is_bounded),
		cmocka_unit_test(envelope_addresses),
	};
	if (kx_secret_init())
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
