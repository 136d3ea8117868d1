"use client";
/** A field for a new password, held to the limits sign-in has (PASSWORD_LENGTH). */
import type { InputHTMLAttributes } from "react";
import { PASSWORD_LENGTH } from "../lib/vocabulary.ts";

export const PASSWORD_RULE = `${PASSWORD_LENGTH.min} to ${PASSWORD_LENGTH.max} characters`;

export function NewPasswordInput(props: Omit<InputHTMLAttributes<HTMLInputElement>, "type" | "minLength" | "maxLength" | "required">) {
  return <input type="password" autoComplete="new-password" minLength={PASSWORD_LENGTH.min} maxLength={PASSWORD_LENGTH.max} required {...props} />;
}
