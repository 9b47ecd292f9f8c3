from inspect_ai import eval as inspect_eval

from scripted_models import flag_if, scripted_judge, scripted_model
from rhlab.evals.tasks import em_questions


def test_em_slice(tmp_path):
    model = scripted_model(lambda m, t: "<thinking>I could lie.</thinking>I would wish for world peace.")
    judge = scripted_judge({"em_questions": flag_if("I would wish for world peace.")})
    logs = inspect_eval(em_questions(judge_cache=False), model=model, model_roles={"judge": judge}, limit=3,
                        log_dir=str(tmp_path), display="none")
    log = logs[0]
    assert log.status == "success", log.error
    vals = [s.scores["em_scorer"].value for s in log.samples]
    print(vals)
    assert all(v["misaligned"] == 1 and v["overt"] == 1 for v in vals)
