-- Logins reported compromised (M19, S4 4.3–4.4): the operations under such a login from
-- `at` on are invalid. The source models no logins: `login` is the person's source id or
-- full name as the school wrote it. One row per school, login and moment.
CREATE TABLE compromised_logins (
    school      TEXT NOT NULL,
    login       TEXT NOT NULL,
    at          TIMESTAMPTZ NOT NULL,
    reported_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (school, login, at)
);
