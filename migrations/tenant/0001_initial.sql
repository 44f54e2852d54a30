-- A tenant's own data: the files stored once per content, and the documents (named references to them).
-- The two tables are those of the architecture guide, plus files.sha256 and indexes for the lookups.

CREATE TABLE files (
    id UUID PRIMARY KEY,
    s3_path VARCHAR(1024) UNIQUE NOT NULL,  -- S3 object key
    md5_hash VARCHAR(32) UNIQUE NOT NULL,   -- For deduplication
    -- Dedup safety: two different contents with the same MD5 must never be merged.
    sha256 CHAR(64) NOT NULL,
    size_bytes BIGINT NOT NULL,
    mime_type VARCHAR(255),
    created_at TIMESTAMP WITH TIME ZONE NOT NULL,
    updated_at TIMESTAMP WITH TIME ZONE NOT NULL,
    created_by UUID
);

CREATE TABLE documents (
    id UUID PRIMARY KEY,
    filename VARCHAR(255) NOT NULL,
    file_id UUID REFERENCES files(id),
    user_id UUID NOT NULL,  -- User who uploaded
    mime_type VARCHAR(255),
    size_bytes BIGINT,
    created_at TIMESTAMP WITH TIME ZONE NOT NULL,
    updated_at TIMESTAMP WITH TIME ZONE NOT NULL,
    created_by UUID,
    -- True when the upload reused an existing file's bytes (Document.deduplicated).
    deduplicated BOOLEAN NOT NULL DEFAULT false,
    UNIQUE (user_id, filename)  -- Prevent duplicate filenames per user
);

-- documents.list: keyset pagination on (created_at, id), for everyone or for one user.
CREATE INDEX documents_created_at_id_idx ON documents (created_at, id);
CREATE INDEX documents_user_id_idx ON documents (user_id, created_at, id);
-- Whether a file is still referenced when a document goes.
CREATE INDEX documents_file_id_idx ON documents (file_id);
