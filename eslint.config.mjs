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
    rules: {
      // Unused bindings named with a leading underscore are deliberate (a destructured field left out).
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_", destructuredArrayIgnorePattern: "^_" }],
    },
  },
]);
