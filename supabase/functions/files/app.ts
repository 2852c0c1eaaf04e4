/** The `files` function's routes (CONTRACT.md §13): the door, then upload, read, list and delete. */
import { createApp } from "../_shared/http.ts";
import { addHealthRoute } from "../_shared/health.ts";
import { settings } from "../_shared/env.ts";
import { callerOf, messageCallerDoor } from "../_shared/auth.ts";
import { notFound } from "../_shared/errors.ts";
import { db } from "../_shared/db.ts";
import { door } from "../_shared/door/validate.ts";
import { fileIdParam, listQuery, noQuery, ownerHeadersSchema, uploadHeadersSchema } from "./schemas.ts";
import { ownerOf, upload } from "./upload.ts";
import { deleteFile, getFile, listFiles } from "./read.ts";

const s = settings(); // fail at boot, with every problem listed, when a setting is bad

export const app = createApp("files");
addHealthRoute(app, "files");

app.post("/", messageCallerDoor, door("header", uploadHeadersSchema), door("query", noQuery), (c) => {
  return upload(c, db(), s, callerOf(c), c.req.valid("header"));
});

app.get("/", messageCallerDoor, door("header", ownerHeadersSchema), door("query", listQuery), async (c) => {
  const q = c.req.valid("query");
  const owner = ownerOf(callerOf(c), c.req.valid("header")["x-owner-id"]);
  const files = await listFiles(db(), callerOf(c), owner, new Date(q.since).toISOString(), q.limit);
  return c.json({ files });
});

app.get("/:file_id", messageCallerDoor, door("param", fileIdParam), door("query", noQuery), (c) => {
  return getFile(c, db(), callerOf(c), c.req.valid("param").file_id);
});

app.delete("/:file_id", messageCallerDoor, door("param", fileIdParam), door("query", noQuery), async (c) => {
  const id = c.req.valid("param").file_id;
  if (!(await deleteFile(db(), callerOf(c), id))) throw notFound(`No file ${id}`);
  return c.body(null, 204);
});
