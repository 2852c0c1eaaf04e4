/** `GET /<name>/health`: 200 with a JSON status, 503 when the database is down (CONTRACT.md §2). */
import type { Hono } from "hono";
import { databaseIsUp } from "./db.ts";

/** Adds the health route to `app`. */
export function addHealthRoute(app: Hono, name: string): void {
  app.get("/health", async (c) => {
    const database = await databaseIsUp();
    return c.json(
      { function: name, status: database ? "ok" : "degraded", database: database ? "up" : "down" },
      database ? 200 : 503,
    );
  });
}
