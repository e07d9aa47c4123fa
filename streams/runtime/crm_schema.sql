-- A small CRM in PostgreSQL: what the Debezium source of CRM Pulse reads (docs/sources.md).
-- REPLICA IDENTITY FULL: an UPDATE or DELETE carries the whole old row ("before"), so the
-- change events say which fields changed.

CREATE TABLE IF NOT EXISTS deals (
    id          text PRIMARY KEY,
    name        text NOT NULL,
    stage       text NOT NULL DEFAULT 'Prospecting',
    amount      numeric(14, 2),
    probability numeric(5, 2),
    owner_id    text,
    region      text,
    next_step   text,
    close_date  date,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE deals REPLICA IDENTITY FULL;

CREATE TABLE IF NOT EXISTS leads (
    id          text PRIMARY KEY,
    name        text NOT NULL,
    company     text,
    status      text NOT NULL DEFAULT 'New',
    source      text,
    owner_id    text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE leads REPLICA IDENTITY FULL;

CREATE TABLE IF NOT EXISTS activities (
    id          text PRIMARY KEY,
    kind        text NOT NULL,
    subject     text,
    deal_id     text REFERENCES deals (id) ON DELETE SET NULL,
    lead_id     text REFERENCES leads (id) ON DELETE SET NULL,
    owner_id    text,
    due_at      timestamptz,
    done        boolean NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE activities REPLICA IDENTITY FULL;

-- pgoutput streams the tables of a publication; Debezium uses this one.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = 'crm_pulse') THEN
        CREATE PUBLICATION crm_pulse FOR TABLE deals, leads, activities;
    END IF;
END
$$;
