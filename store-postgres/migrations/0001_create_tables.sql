-- Version 1 of the eventhubs checkpoint-store schema.
--
-- Runs with search_path set to the store's schema (see PostgresStore::migrate), so the tables
-- land in whichever schema the store was configured with.
--
-- Names are stored lower-cased by the store (rule C1); text columns hold any name that passed
-- rule C11 (no control characters, so no NUL either).

-- Ownership (C3-C8): one row per (namespace, event hub, consumer group, partition).
-- etag is issued by the store on every won claim (gen_random_uuid()), last_modified_time comes
-- from the server's clock and never goes backwards for one partition (C5).
CREATE TABLE ownership (
    namespace          text        NOT NULL,
    event_hub          text        NOT NULL,
    consumer_group     text        NOT NULL,
    partition_id       text        NOT NULL,
    owner_id           text        NOT NULL,
    etag               text        NOT NULL,
    last_modified_time timestamptz NOT NULL,
    PRIMARY KEY (namespace, event_hub, consumer_group, partition_id)
);

-- Checkpoints (C9): an opaque offset string and/or a sequence number, at least one of them.
CREATE TABLE checkpoint (
    namespace       text        NOT NULL,
    event_hub       text        NOT NULL,
    consumer_group  text        NOT NULL,
    partition_id    text        NOT NULL,
    offset_value    text,
    sequence_number bigint,
    updated_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (namespace, event_hub, consumer_group, partition_id),
    CONSTRAINT checkpoint_has_position CHECK (offset_value IS NOT NULL OR sequence_number IS NOT NULL)
);
