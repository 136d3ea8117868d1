// ESLint 9 flat config: Next's rules (React, hooks, Core Web Vitals) and typescript-eslint's
// recommended rules for every TypeScript file. Formatting is Prettier's (.prettierrc), not ESLint's.
import nextVitals from "eslint-config-next/core-web-vitals";
import nextTypescript from "eslint-config-next/typescript";
import { defineConfig, globalIgnores } from "eslint/config";
import tseslint from "typescript-eslint";

export default defineConfig([
  ...nextVitals,
  ...nextTypescript,
  ...tseslint.configs.recommended,
  globalIgnores([".next/**", "node_modules/**", "data/**", "dist/**", "server/generated/**", "next-env.d.ts", "test-results/**", "playwright-report/**"]),
  {
    // The browser's side of the house (what Next bundles) never runs server code: from
    // server/ it may import types only. This is the guard `import "server-only"` would be,
    // enforced without the marker, which throws when plain Node (the server, the tests)
    // imports it outside React's server-components condition.
    files: ["app/**", "components/**"],
    rules: {
      "@typescript-eslint/no-restricted-imports": [
        "error",
        {
          patterns: [
            {
              regex: "(^|/)server/|^@/server/",
              allowTypeImports: true,
              message: "Browser code imports types only from server/; shared values live in lib/vocabulary.ts.",
            },
          ],
        },
      ],
    },
  },
  {
    // lib/ is shared by browser and server and depends on nothing.
    files: ["lib/**"],
    rules: { "no-restricted-imports": ["error", { patterns: ["*"] }] },
  },
  {
    rules: {
      // Unused bindings named with a leading underscore are deliberate (a destructured field left out).
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_", destructuredArrayIgnorePattern: "^_" }],
    },
  },
]);
