"""Answer readers: where `eval` and `grade` look for the answer, picked by name.

- "final-answer" (the default, and the only reading the RL reward ever uses): the answer
  contract (`rewards.contract`), each grader its own reading — strict for "math-verify" (last
  `Final Answer:` line, else last `\\boxed{}`, outside paths), the paper's for "paper" and
  "paper-gsm8k".
- "common": for models not trained on the Final-Answer contract (a base or instruct model, a
  model tuned on GSM8K's reference solutions). The grader's own reading first, so every answer
  the contract finds is read the same; when it finds none, the common forms below, in this
  priority (a form is read only when every form above it is absent; within a form the LAST one
  in the text wins, as in the contract):
    1. `#### X` — GSM8K's own form and lm-eval's default (`#### 18`, `####18`, `#### $1,234`,
       `#### -3.5`, `#### \\frac{1}{2}`): exactly four `#`, then a value: an optional markdown,
       math delimiter, currency sign or sign, then a digit or a LaTeX command. A markdown
       heading is not an answer: `#### Step 2`, `#### Final Answer` (words) and `#### 1. Setup`,
       `#### 2) Solve`, `#### 3 Solving` (a numbered heading: a number, then `.`/`)`/`:`, a
       space and a word, or a space and a capitalised word).
    2. an answer statement: `the answer is X`, `The final answer is $X$. I hope it is correct.`
       (Minerva's form), `the answer is: X`, `Answer: X`, `**Answer:** X` (the word "answer",
       any case, then `is` or a colon), or a label alone on its line (`### Answer`,
       `**Answer**`). After a colon with nothing else on the line, or after a label alone, the
       next non-blank line is the answer.
  The answer runs to the end of its line or of its sentence (`.`, `!` or `?` before a space; a
  decimal point and `$..$`/`\\(..\\)` math do not end it), markdown before it removed; then the
  grader reduces and compares it as usual (`The answer is 18 apples` is 18). A form whose
  answer says nothing (`format.answer.is_blank_answer`; `what the answer is.`) gives way to
  the one before. Like the contract, only text outside paths is read (a `#### 42` inside a
  `<Path>` is one line of thought, not the response's answer). lm-eval's strict GSM8K filter
  takes the FIRST `####` (a base model prompted with few-shot examples goes on to write the
  next example); our prompts end at the end of the response, so its last word is its answer.

math-verify's own extraction is not used for the location: it returns a parsed value, not the
text the model wrote (our reduction and the "paper" graders need the text), it does not know
`####`, and it reads any "answer" followed by a number within 50 characters.
Every function here is linear in the text (a reader may run on any model's output).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from parallel_r1.format.answer import is_blank_answer, readable_text
from parallel_r1.registry import Registry
from parallel_r1.rewards.answer import extract_gsm8k_number, read_answer, strip_tags

Reader = Callable[[str, str], "str | None"]  # (response, the grader's reading) -> answer or None
ANSWER_READERS: Registry[Reader] = Registry("answer reader")
DEFAULT_READER = "final-answer"

_HASHES_RE = re.compile(r"(?<!#)####(?!#)")
# A value after `####`: markdown, a math delimiter, a bracket, a currency sign and a sign may
# come before its first digit (or LaTeX command).
_VALUE_RE = re.compile(r"[ \t]*(?:\*\*|__)?[ \t]*(?:\$|\\\(|\\\[)?[ \t]*[(\[]?[ \t]*"
                       r"(?:\\\$|[$€£¥])?[ \t]*[-+−]?[ \t]*(?:\\\$|[$€£¥])?[ \t]*"
                       r"(?:\d|\.\d|\\[A-Za-z])")
_HEADING_RE = re.compile(r"[ \t]*(?:\*\*|__)?[ \t]*\(?\d+(?:[.):][ \t]+[^\W\d_]|[ \t]+[A-Z][a-z]{2})")
_STATEMENT_RE = re.compile(r"(?i)(?<![a-z])answer(?![a-z])[*_]{0,2}(?:[ \t]+is(?![a-z])[ \t]*"
                           r"(?::[*_]{0,2})?|[ \t]*:[*_]{0,2}|(?P<alone>[*_ \t]*(?=\r?\n|$)))")
_DECORATION = "#>*_ \t"  # markdown before a label alone on its line: `### Answer`, `**Answer**`
# The answer's sentence: runs to a newline or a `.`/`!`/`?` before a space or the end; inline
# math (`$3.5$`, `\(x. y\)` without a sentence end inside) is skipped whole.
_SENTENCE_RE = re.compile(r"(?:\$(?:[^$\n.!?]|[.!?](?=\S))+\$|\\\((?:[^\n\\]|\\(?!\)))*\\\)"
                          r"|[^\n.!?]|[.!?](?=\S))*")


def _sentence(text: str, start: int) -> str:
    """The answer written at `start`: to the end of its sentence or line, stripped."""
    match = _SENTENCE_RE.match(text, start)
    return text[start:match.end()].strip()


def hash_answer(text: str) -> str | None:
    """The answer of the last `#### X` whose X is a value (see the module doc), or None."""
    for match in reversed(list(_HASHES_RE.finditer(text))):
        at = match.end()
        if not _VALUE_RE.match(text, at) or _HEADING_RE.match(text, at):
            continue
        answer = _sentence(text, at)
        if not is_blank_answer(answer):
            return answer
    return None


def statement_answer(text: str) -> str | None:
    """The answer of the last statement `the answer is X` / `Answer: X` that has one, or None."""
    for match in reversed(list(_STATEMENT_RE.finditer(text))):
        if match.group("alone") is not None:  # a label only when alone on its line
            line_start = text.rfind("\n", 0, match.start()) + 1
            answer = (_next_line(text, match.end())
                      if not text[line_start:match.start()].strip(_DECORATION) else None)
        else:
            answer = _sentence(text, match.end())
            if is_blank_answer(answer) and match.group().rstrip("*_").endswith(":"):
                answer = _next_line(text, match.end())
        if answer is not None and not is_blank_answer(answer):
            return answer
    return None


def _next_line(text: str, start: int) -> str | None:
    """The first line after the one at `start` that says something (blank ones skipped)."""
    end = text.find("\n", start)
    while end >= 0:
        nxt = text.find("\n", end + 1)
        line = text[end + 1:] if nxt < 0 else text[end + 1:nxt]
        if not is_blank_answer(line):
            return _sentence(text, end + 1 + len(line) - len(line.lstrip()))
        end = nxt
    return None


def common_form(text: str) -> str | None:
    """The answer in a common form, outside paths: the last `#### X`, else the last answer
    statement (see the module doc). None when there is neither."""
    readable = readable_text(text)
    found = hash_answer(readable)
    return found if found is not None else statement_answer(readable)


@ANSWER_READERS.register("final-answer")
def read_final_answer(response: str, reading: str = "strict") -> str | None:
    """The answer contract's reading: "strict", "paper" or "paper-gsm8k" (`grading.reading_of`).

    Returns:
        The answer as written, or None when the contract finds none.

    Raises:
        ValueError: an unknown reading.
    """
    if reading == "paper-gsm8k":
        return extract_gsm8k_number(strip_tags(response), first=False)
    return read_answer(response, reading)


@ANSWER_READERS.register("common")
def read_common(response: str, reading: str = "strict") -> str | None:
    """The contract's reading, else the common forms (`####`, then `the answer is`/`Answer:`).

    Args:
        response: a response, with its tags if it has any.
        reading: the grader's reading of the contract, tried first.

    Returns:
        The answer as written, or None when no form holds one.

    Raises:
        ValueError: an unknown reading.
    """
    found = read_final_answer(response, reading)
    return found if found is not None else common_form(response)


__all__ = ["ANSWER_READERS", "DEFAULT_READER", "Reader", "common_form",
           "hash_answer", "read_common", "read_final_answer", "statement_answer"]
