CREATE TABLE "conditions" (
  "id" INTEGER PRIMARY KEY AUTOINCREMENT,
  "name" TEXT UNIQUE NOT NULL,
  "filter" TEXT NOT NULL,
  "cli" TEXT NOT NULL,
  "extras" JSON NOT NULL,
  "enabled" BOOLEAN NOT NULL,
  "priority" INTEGER NOT NULL,
  "description" TEXT NOT NULL
);
CREATE TABLE "dl_fields" (
  "id" INTEGER PRIMARY KEY AUTOINCREMENT,
  "name" TEXT UNIQUE NOT NULL,
  "description" TEXT NOT NULL,
  "field" TEXT NOT NULL,
  "kind" TEXT NOT NULL,
  "order" INTEGER NOT NULL,
  "value" TEXT NOT NULL,
  "icon" TEXT NOT NULL,
  "extras" JSON NOT NULL
);
CREATE TABLE "download_folders" (
  "path" TEXT NOT NULL PRIMARY KEY
);
CREATE TABLE "executions" (
  "id" INTEGER PRIMARY KEY AUTOINCREMENT,
  "task_id" INTEGER NOT NULL,
  "task_name" TEXT NOT NULL,
  "trigger" TEXT NOT NULL,
  "status" TEXT NOT NULL,
  "handler" TEXT NOT NULL,
  "started_at" REAL NOT NULL,
  "finished_at" REAL,
  "found" INTEGER NOT NULL,
  "queued" INTEGER NOT NULL,
  "skipped" INTEGER NOT NULL,
  "failed" INTEGER NOT NULL,
  "error" TEXT NOT NULL,
  "log" JSON NOT NULL
);
CREATE TABLE "items" (
  "id" TEXT NOT NULL PRIMARY KEY,
  "kind" TEXT NOT NULL,
  "status" TEXT NOT NULL,
  "url" TEXT NOT NULL,
  "title" TEXT NOT NULL,
  "preset" TEXT NOT NULL,
  "folder" TEXT NOT NULL,
  "template" TEXT NOT NULL,
  "cookies" TEXT NOT NULL,
  "cli" TEXT NOT NULL,
  "auto_start" BOOLEAN NOT NULL,
  "extractor" TEXT NOT NULL,
  "video_id" TEXT NOT NULL,
  "batch_id" TEXT NOT NULL,
  "batch_name" TEXT NOT NULL,
  "created_at" REAL NOT NULL,
  "updated_at" REAL NOT NULL,
  "started_at" REAL,
  "finished_at" REAL,
  "filename" TEXT NOT NULL,
  "file_size" BIGINT,
  "file_mtime_ns" BIGINT,
  "downloaded_bytes" BIGINT,
  "total_bytes" BIGINT,
  "error" TEXT NOT NULL,
  "msg" TEXT NOT NULL,
  "info" JSON NOT NULL,
  "extras" JSON NOT NULL,
  "removed_options" JSON NOT NULL,
  "download_folder" TEXT NOT NULL
);
CREATE VIRTUAL TABLE items_search USING fts5(title, url, content='items', content_rowid='rowid', tokenize='trigram');
CREATE TABLE "notification_outbox" (
  "id" INTEGER PRIMARY KEY AUTOINCREMENT,
  "target" TEXT NOT NULL,
  "delivery" TEXT NOT NULL,
  "notice" TEXT NOT NULL,
  "attempts" INTEGER NOT NULL,
  "next_at" REAL
);
CREATE TABLE "notification_targets" (
  "id" INTEGER PRIMARY KEY AUTOINCREMENT,
  "name" TEXT UNIQUE NOT NULL,
  "on" JSON NOT NULL,
  "presets" JSON NOT NULL,
  "enabled" BOOLEAN NOT NULL,
  "request" JSON NOT NULL,
  "last_status" TEXT NOT NULL,
  "last_error" TEXT NOT NULL,
  "last_sent_at" REAL
);
CREATE TABLE "presets" (
  "id" INTEGER PRIMARY KEY AUTOINCREMENT,
  "name" TEXT UNIQUE NOT NULL,
  "description" TEXT NOT NULL,
  "folder" TEXT NOT NULL,
  "template" TEXT NOT NULL,
  "cookies" TEXT NOT NULL,
  "cli" TEXT NOT NULL,
  "nfo" TEXT NOT NULL,
  "builtin" BOOLEAN NOT NULL,
  "priority" INTEGER NOT NULL
);
CREATE TABLE "task_definitions" (
  "id" INTEGER PRIMARY KEY AUTOINCREMENT,
  "name" TEXT UNIQUE NOT NULL,
  "description" TEXT NOT NULL,
  "enabled" BOOLEAN NOT NULL,
  "definition" JSON NOT NULL
);
CREATE TABLE "task_entries" (
  "task_id" INTEGER NOT NULL,
  "key" TEXT NOT NULL,
  PRIMARY KEY ("task_id", "key")
);
CREATE TABLE "tasks" (
  "id" INTEGER PRIMARY KEY AUTOINCREMENT,
  "name" TEXT UNIQUE NOT NULL,
  "url" VARCHAR(8192) NOT NULL,
  "timer" TEXT NOT NULL,
  "preset" TEXT NOT NULL,
  "folder" TEXT NOT NULL,
  "template" TEXT NOT NULL,
  "cli" TEXT NOT NULL,
  "cookies" TEXT NOT NULL,
  "config" JSON NOT NULL,
  "auto_start" BOOLEAN NOT NULL,
  "handler_enabled" BOOLEAN NOT NULL,
  "enabled" BOOLEAN NOT NULL,
  "published_after" TEXT NOT NULL,
  "keep_newest" INTEGER,
  "keep_days" INTEGER,
  "created_at" REAL NOT NULL,
  "last_run_at" REAL,
  "last_status" TEXT NOT NULL,
  "last_error" TEXT NOT NULL,
  "last_found" INTEGER,
  "last_queued" INTEGER,
  "failures" INTEGER NOT NULL,
  "mark_pending" BOOLEAN NOT NULL
);
CREATE INDEX "idx_executions__status" ON "executions" ("status");
CREATE INDEX "idx_executions__task_id" ON "executions" ("task_id");
CREATE INDEX "idx_items__batch_id" ON "items" ("batch_id");
CREATE INDEX idx_items_filename ON items (filename);
CREATE INDEX idx_items_kind_batch_created_id ON items (kind, batch_id, created_at, id);
CREATE INDEX idx_items_kind_created_id_status ON items (kind, created_at, id, status);
CREATE INDEX idx_items_kind_status_created_id ON items (kind, status, created_at, id);
CREATE INDEX "idx_notification_outbox__target" ON "notification_outbox" ("target");
CREATE TRIGGER items_search_delete AFTER DELETE ON items BEGIN INSERT INTO items_search (items_search, rowid, title, url) VALUES ('delete', old.rowid, old.title, old.url); END;
CREATE TRIGGER items_search_insert AFTER INSERT ON items BEGIN INSERT INTO items_search (rowid, title, url) VALUES (new.rowid, new.title, new.url); END;
CREATE TRIGGER items_search_update AFTER UPDATE OF title, url ON items BEGIN INSERT INTO items_search (items_search, rowid, title, url) VALUES ('delete', old.rowid, old.title, old.url); INSERT INTO items_search (rowid, title, url) VALUES (new.rowid, new.title, new.url); END;
