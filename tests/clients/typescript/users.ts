// A small program against the TypeScript types that openapi-typescript
// generates from openapi.yaml, with openapi-fetch as the HTTP client.
// scripts/test-clients type-checks it with `tsc --noEmit`: a change to
// openapi.yaml that breaks this usage fails the check.
import createClient from "openapi-fetch";
import type { components, paths } from "../../../target/clients/typescript/schema";

type User = components["schemas"]["User"];
type Status = components["schemas"]["Status"];

export async function renameFirstAdmin(baseUrl: string, newName: string): Promise<User | Status> {
  const client = createClient<paths>({ baseUrl });

  const created = await client.POST("/v1/users", {
    body: { name: "Ada", type: "USER_TYPE_ADMIN" },
    params: { header: { "Idempotency-Key": "create-ada" } },
  });
  if (created.error) {
    return created.error;
  }

  const page = await client.GET("/v1/users", {
    params: { query: { pageSize: 10, type: "USER_TYPE_ADMIN" } },
  });
  if (page.error) {
    return page.error;
  }
  const first: User | undefined = page.data.users[0];
  const nextPageToken: string = page.data.nextPageToken;
  if (first === undefined || nextPageToken === undefined) {
    return created.data;
  }

  const updated = await client.PATCH("/v1/users/{id}", {
    params: { path: { id: first.id } },
    body: { name: newName },
  });
  if (updated.error) {
    const violations = updated.error.details.flatMap((detail) => detail.fieldViolations);
    console.error(violations.map((violation) => `${violation.field}: ${violation.description}`).join("\n"));
    return updated.error;
  }

  await client.DELETE("/v1/users/{id}", { params: { path: { id: created.data.id } } });
  return updated.data;
}

// Requests cannot set USER_TYPE_UNKNOWN, so the generated types must reject it.
export const rejectedCreate: components["schemas"]["CreateUserRequest"] = {
  name: "Nobody",
  // @ts-expect-error USER_TYPE_UNKNOWN is not a UserTypeInput.
  type: "USER_TYPE_UNKNOWN",
};

// Responses may carry USER_TYPE_UNKNOWN for users adopted from the previous service.
export const adoptedType: User["type"] = "USER_TYPE_UNKNOWN";
